// Lint: ESLint's and typescript-eslint's recommended rules (`npm run lint`, run by .ci/run).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'bench/results/**', 'dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The policy pack's CommonJS entry point, for the Pulumi CLI's require().
    files: ['policy/main.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', __filename: 'readonly' } },
  },
  {
    // mongosh scripts the image's entrypoint runs on an empty data volume.
    files: ['databases/mongodb/initdb/*.js'],
    languageOptions: { sourceType: 'script', globals: { db: 'readonly', print: 'readonly', process: 'readonly' } },
  },
  {
    rules: {
      // A leading underscore marks what is unused on purpose (a destructured field left out).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
);
