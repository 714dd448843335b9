// Entry point for the Pulumi CLI's policy runner, which loads a policy pack with require() after
// registering ts-node for CommonJS. This pack is ESM TypeScript like the program it checks (so the
// repository's tsc and vitest read the policies as they read the rest), so it is handed to tsx's
// ESM loader, as Pulumi.yaml does for the program (`nodeargs: --import tsx`). The runner awaits
// the exported promise; a failed import fails the policy pack with its error.
module.exports = import('tsx/esm/api').then(({ tsImport }) => tsImport('./index.ts', __filename));
