/**
 * Reading the stack's object store from the operator's machine, for `npm run restore`: rclone (the
 * same tool the backup jobs upload with), configured from its environment for the store's
 * endpoint and region, the credentials from the operator's own environment (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, a profile, or the cloud's identity: `env_auth`), never from the stack.
 */
import { spawn } from 'node:child_process';
import type { ObjectStoreSpec } from './backup.ts';

/** rclone's settings for an on-the-fly `:s3:` remote of the store. */
export function rcloneEnvironment(store: ObjectStoreSpec, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...env,
    RCLONE_S3_PROVIDER: store.endpoint.includes('amazonaws.com') ? 'AWS' : 'Other',
    RCLONE_S3_ENDPOINT: store.endpoint,
    RCLONE_S3_REGION: store.region,
    RCLONE_S3_FORCE_PATH_STYLE: String(store.forcePathStyle),
    RCLONE_S3_ENV_AUTH: 'true',
  };
}

/** Runs rclone; its stdout, or an error naming who asked, the command and rclone's last lines. */
export function runRclone(who: string, binary: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => reject(new Error(`${who}: cannot run ${binary} (rclone, to read the object store): ${error.message}`, { cause: error })));
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${who}: ${binary} ${args[0]} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)),
    );
  });
}

/** The uploads of a backup job under `<path>/<directory>/` (their names are UTC timestamps), oldest first. */
export async function listUploads(who: string, store: ObjectStoreSpec, path: string, directory: string, rclone = 'rclone'): Promise<string[]> {
  const listing = await runRclone(who, rclone, ['lsf', '--dirs-only', `:s3:${store.bucket}/${path}/${directory}/`], rcloneEnvironment(store));
  return listing
    .split('\n')
    .map((line) => line.trim().replace(/\/$/, ''))
    .filter((line) => line !== '')
    .sort();
}

/** Copies one object of the store (`key` under the bucket) to a local file. */
export async function downloadObject(who: string, store: ObjectStoreSpec, key: string, file: string, rclone = 'rclone'): Promise<void> {
  await runRclone(who, rclone, ['copyto', `:s3:${store.bucket}/${key}`, file], rcloneEnvironment(store));
}
