/**
 * Pulumi mocks that record every resource the program registers, as it registered it. Used by the
 * offline render and by the tests; no Pulumi CLI, Docker engine or cluster involved.
 */
import { createHash } from 'node:crypto';
import type * as pulumi from '@pulumi/pulumi';

export interface RecordedResource {
  type: string;
  name: string;
  /**
   * Inputs as the mocks receive them; secret values are still in Pulumi's secret envelope, but
   * Pulumi's deserialization lifts a secret list item to the whole list (all of a container's
   * `envs` is secret when one entry is).
   */
  inputs: Record<string, unknown>;
  /**
   * Inputs as the program serialized them, each secret envelope exactly around the value the
   * program made secret (one `envs` entry, one upload's `content`). Recorded only once
   * {@link RecordingMocks.recordSerializedInputs} has been called.
   */
  serializedInputs?: Record<string, unknown>;
}

/** Pulumi's marker for a secret value on the wire. */
export const SECRET_SIGNATURE_KEY = '4dabf18193072939515e22adb298388d';
export const SECRET_SIGNATURE = '1b47061264138c4ac30d75fd1eb44270';

export interface RecordingMocks {
  mocks: pulumi.runtime.Mocks;
  resources: RecordedResource[];
  /**
   * Every password the mocked `random.RandomPassword` handed out, and every private key (PEM) the
   * mocked `tls.PrivateKey` did, to prove none leaks.
   */
  generatedSecrets: string[];
  /**
   * Records each resource's serialized inputs too ({@link RecordedResource.serializedInputs}).
   * Call it with `pulumi.runtime.getMonitor()` right after `pulumi.runtime.setMocks`.
   */
  recordSerializedInputs(monitor: unknown): void;
}

/** The part of Pulumi's mock monitor (`runtime/mocks.js`) the recorder wraps. */
interface MockMonitor {
  registerResource(request: RegisterResourceRequest, callback: unknown): unknown;
}

/** The part of Pulumi's `RegisterResourceRequest` the recorder reads. */
interface RegisterResourceRequest {
  getType(): string;
  getName(): string;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
}

function isMockMonitor(monitor: unknown): monitor is MockMonitor {
  return monitor !== null && typeof monitor === 'object' && typeof (monitor as Partial<MockMonitor>).registerResource === 'function';
}

export function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIGNATURE_KEY] === SECRET_SIGNATURE) return unwrapSecrets(record.value);
    return Object.fromEntries(Object.entries(record).map(([key, inner]) => [key, unwrapSecrets(inner)]));
  }
  return value;
}

/** A PEM block of `label` whose body is derived from `seed`. */
function pem(label: string, seed: string): string {
  const body = createHash('sha512').update(seed).digest('base64');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

export interface MockOptions {
  /** Exit code and logs of a one-shot container (the Docker bootstrap run); 0 by default. */
  containerExit?: (name: string) => { code: number; logs: string };
}

export function createRecordingMocks(options: MockOptions = {}): RecordingMocks {
  const resources: RecordedResource[] = [];
  const generatedSecrets: string[] = [];
  // Handed from the monitor to `newResource`, which the monitor calls synchronously with the
  // same request; matched by type and name, so a mismatch records nothing rather than the wrong inputs.
  let serialized: { type: string; name: string; inputs: Record<string, unknown> } | undefined;
  const mocks: pulumi.runtime.Mocks = {
    newResource(args) {
      const own = serialized?.type === args.type && serialized.name === args.name ? serialized.inputs : undefined;
      serialized = undefined;
      resources.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown>, ...(own ? { serializedInputs: own } : {}) });
      const state: Record<string, unknown> = { ...(unwrapSecrets(args.inputs) as Record<string, unknown>) };
      switch (args.type) {
        case 'random:index/randomPassword:RandomPassword': {
          // The same value for the same resource on every run, as Pulumi's state keeps it: a
          // second evaluation of an unchanged stack is no change, a new resource (a rotation's
          // generation) a new password.
          const password = createHash('sha256').update(`allixios-mock-password:${args.name}`).digest('base64url').slice(0, 32);
          generatedSecrets.push(password);
          state.result = password;
          break;
        }
        // @pulumi/tls: PEM-shaped stand-ins, distinct per resource, so a test can find them anywhere.
        case 'tls:index/privateKey:PrivateKey': {
          const key = pem('PRIVATE KEY', `allixios-mock-private-key:${args.name}`);
          generatedSecrets.push(key);
          state.privateKeyPem = key;
          state.publicKeyPem = pem('PUBLIC KEY', `allixios-mock-public-key:${args.name}`);
          break;
        }
        case 'tls:index/certRequest:CertRequest':
          state.certRequestPem = pem('CERTIFICATE REQUEST', `allixios-mock-request:${args.name}`);
          break;
        case 'tls:index/selfSignedCert:SelfSignedCert':
        case 'tls:index/locallySignedCert:LocallySignedCert':
          state.certPem = pem('CERTIFICATE', `allixios-mock-certificate:${args.name}`);
          break;
        case 'docker:index/remoteImage:RemoteImage': {
          const digest = createHash('sha256').update(String(state.name)).digest('hex');
          state.imageId = `sha256:${digest}`;
          state.repoDigest = `${String(state.name).split(':')[0]}@sha256:${digest}`;
          break;
        }
        case 'docker:index/container:Container': {
          if (state.attach === true) {
            const exit = options.containerExit?.(args.name) ?? { code: 0, logs: '' };
            state.exitCode = exit.code;
            state.containerLogs = exit.logs;
          }
          break;
        }
        default:
          break;
      }
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      return args.inputs;
    },
  };
  const recordSerializedInputs = (monitor: unknown) => {
    if (!isMockMonitor(monitor)) {
      throw new Error("the render records serialized inputs from Pulumi's mock monitor, but pulumi.runtime.getMonitor() has no registerResource: call setMocks first");
    }
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (request, callback) => {
      // The wire form, before the monitor deserializes it: secret envelopes where the program put them.
      serialized = { type: request.getType(), name: request.getName(), inputs: request.getObject()?.toJavaScript() ?? {} };
      return register(request, callback);
    };
  };
  return { mocks, resources, generatedSecrets, recordSerializedInputs };
}

/** Lists of `NAME=value` strings: a Docker container's `envs`. */
const VARIABLE_LISTS = new Set(['envs']);
const VARIABLE = /^([A-Za-z_][A-Za-z0-9_.-]*)=/;

/**
 * Replaces every secret value by `marker`, so rendered output can be reviewed and committed.
 * Inside a secret the structure is kept (object keys, list lengths) and every string becomes the
 * marker, so a review still sees which keys exist (all of a Secret's `stringData`). An entry of
 * an environment list (`envs`) keeps its variable's name: `NAME=<marker>`. Pulumi marks a whole
 * input property secret when any part of it is; given serialized inputs
 * ({@link RecordedResource.serializedInputs}), only the parts that are secret are replaced.
 */
export function redactSecrets(value: unknown, marker: string, insideSecret = false, key?: string): unknown {
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, marker, insideSecret, key));
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIGNATURE_KEY] === SECRET_SIGNATURE) return redactSecrets(record.value, marker, true, key);
    return Object.fromEntries(Object.entries(record).map(([name, inner]) => [name, redactSecrets(inner, marker, insideSecret, name)]));
  }
  if (!insideSecret || typeof value !== 'string') return value; // flags and numbers inside a secret stay readable
  const variable = key !== undefined && VARIABLE_LISTS.has(key) ? VARIABLE.exec(value)?.[1] : undefined;
  return variable ? `${variable}=${marker}` : marker;
}

/**
 * Resolves when the program has registered everything: no new resource for `quietMs`. Under the
 * mocks every registration resolves in-process and the program does no asynchronous I/O, so a
 * quiet window of many event-loop turns means the program is done (30 ms: renders of every
 * stack gave the same resources run after run; the render's own time is a benchmark target).
 */
export async function settled(resources: readonly unknown[], quietMs = 30, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let count = -1;
  while (count !== resources.length) {
    if (Date.now() > deadline) throw new Error(`the program was still registering resources after ${timeoutMs} ms`);
    count = resources.length;
    await new Promise((resolve) => setTimeout(resolve, quietMs));
  }
}
