/**
 * What the platform team sets on the stack's bucket for its backups (README "The object store's
 * access policy"), derived from the stack: the least-privileged access policy of the credentials
 * (list the stack's prefix, write and read backups; delete only under the prefixes of the engines
 * whose tool expires backups itself) and the lifecycle rules that expire the others after the
 * retention's days. AWS's JSON forms; other S3-compatible stores (MinIO, GCS's interoperability)
 * take the same or an equivalent. Not secret: names, no credential.
 */
import type { StackConfig } from './config/index.ts';

export interface BackupBucketPolicy {
  /** Where the stack's backups go. */
  url: string;
  /** The IAM policy document of the credentials the backup jobs and members use. */
  accessPolicy: { Version: '2012-10-17'; Statement: Array<Record<string, unknown>> };
  /** The bucket's lifecycle rules for the engines whose tool deletes nothing (S3 PutBucketLifecycleConfiguration's `Rules`). */
  lifecycleRules: Array<Record<string, unknown>>;
}

/** The bucket policy for a stack that backs up; undefined for one that does not. */
export function backupBucketPolicy(config: Pick<StackConfig, 'backups' | 'engines'>): BackupBucketPolicy | undefined {
  if (!config.backups.enabled) return undefined;
  const { objectStore: store, retention } = config.backups;
  const bucket = `arn:aws:s3:::${store.bucket}`;
  const backedUp = config.engines.filter((engine) => engine.spec.backup);
  const expiring = backedUp.filter((engine) => engine.spec.backup!.expiresItself);
  const lifecycled = backedUp.filter((engine) => !engine.spec.backup!.expiresItself);
  const prefix = (engine: string) => `${store.prefix}/${engine}/`;
  // Besides expiry, what a tool deletes of its own (ClickHouse's lock files), and only that.
  const ownDeletes = lifecycled.flatMap((engine) => (engine.spec.backup!.deletes ?? []).map((pattern) => `${bucket}/${prefix(engine.spec.name)}${pattern}`));
  return {
    url: `s3://${store.bucket}/${store.prefix}`,
    accessPolicy: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ListTheStacksPrefix',
          Effect: 'Allow',
          Action: ['s3:ListBucket', 's3:GetBucketLocation'],
          Resource: bucket,
          Condition: { StringLike: { 's3:prefix': [store.prefix, `${store.prefix}/*`] } },
        },
        {
          Sid: 'WriteAndReadBackups',
          Effect: 'Allow',
          Action: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
          Resource: `${bucket}/${store.prefix}/*`,
        },
        ...(expiring.length > 0
          ? [
              {
                Sid: 'ExpireByRetention',
                Effect: 'Allow',
                Action: ['s3:DeleteObject'],
                Resource: expiring.map((engine) => `${bucket}/${prefix(engine.spec.name)}*`),
              },
            ]
          : []),
        ...(ownDeletes.length > 0 ? [{ Sid: 'DeleteOwnWorkingFiles', Effect: 'Allow', Action: ['s3:DeleteObject'], Resource: ownDeletes }] : []),
      ],
    },
    lifecycleRules: lifecycled.map((engine) => ({
      ID: `allixios-${store.prefix.replaceAll('/', '-')}-${engine.spec.name}`,
      Status: 'Enabled',
      Filter: { Prefix: prefix(engine.spec.name) },
      Expiration: { Days: retention.days },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    })),
  };
}
