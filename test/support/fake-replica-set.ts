/**
 * A stand-in for a MongoDB replica set's members, speaking MongoDB's wire protocol on loopback
 * ports, for the bootstrap's replica set adapter (no real mongod can run on this machine,
 * ENGINES.md). It models only what the adapter relies on, as MongoDB documents it: `hello` as a
 * member without a configuration, a member, a removed member, or the primary answers it;
 * `replSetGetConfig` (NotYetInitialized without one); `replSetInitiate` (AlreadyInitialized on a
 * second one); `replSetReconfig` on the primary only, with a version above the current one and at
 * most one voting member changed; `replSetStepDown`. It is a model, not a server: what it proves is
 * that the adapter sends these commands, handles these replies and codes, and converges, never
 * that MongoDB behaves as modelled. No authentication (URLs without credentials) and no TLS.
 *
 * The driver's first message on a connection is an OP_QUERY `isMaster` (the handshake), every
 * later one an OP_MSG; replies are OP_REPLY and OP_MSG accordingly.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { BSON, type Document } from 'mongodb';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;

export interface FakeConfigMember {
  _id: number;
  host: string;
  votes?: number;
  priority?: number;
  [field: string]: unknown;
}

export interface FakeConfig {
  _id: string;
  version: number;
  term?: number;
  members: FakeConfigMember[];
  [field: string]: unknown;
}

/** One reply the set gives instead of running a command, once (a transient error of the real server). */
export interface InjectedError {
  command: string;
  code: number;
  codeName: string;
}

interface Member {
  host: string;
  port: number;
  server: Server;
  sockets: Set<Socket>;
  up: boolean;
  /** Has held a configuration (a removed member still reports the set's name). */
  wasMember: boolean;
}

/** Every command the set received, in order: `host command`. */
export type CommandLog = string[];

export class FakeReplicaSet {
  config?: FakeConfig;
  primary?: string;
  readonly log: CommandLog = [];
  readonly injected: InjectedError[] = [];
  private readonly members = new Map<string, Member>();

  private constructor(private readonly name: string) {}

  /** Starts `count` members without a configuration, on free loopback ports. */
  static async start(count: number, name = 'rs0'): Promise<FakeReplicaSet> {
    const set = new FakeReplicaSet(name);
    for (let index = 0; index < count; index++) await set.addMember();
    return set;
  }

  /** Starts one more member without a configuration; returns its host. */
  async addMember(): Promise<string> {
    const sockets = new Set<Socket>();
    const member = { sockets, up: true, wasMember: false } as Member;
    member.server = createServer((socket) => this.serve(member, socket));
    await new Promise<void>((resolve) => member.server.listen(0, '127.0.0.1', resolve));
    const address = member.server.address();
    if (address === null || typeof address === 'string') throw new Error('fake replica set: no port');
    member.port = address.port;
    member.host = `127.0.0.1:${address.port}`;
    this.members.set(member.host, member);
    return member.host;
  }

  get hosts(): string[] {
    return [...this.members.keys()];
  }

  /** Stops a member (its port refuses connections); a primary gives way to another live member of the configuration. */
  async stop(host: string): Promise<void> {
    const member = this.members.get(host)!;
    member.up = false;
    for (const socket of member.sockets) socket.destroy();
    await new Promise<void>((resolve) => member.server.close(() => resolve()));
    if (this.primary === host) this.primary = undefined;
  }

  /** Makes the first live configured member the primary when a majority of the voters is alive (an election). */
  elect(): void {
    if (!this.config) return;
    const voters = this.config.members.filter((entry) => (entry.votes ?? 1) > 0);
    const alive = voters.filter((entry) => this.members.get(entry.host)?.up);
    this.primary = alive.length * 2 > voters.length ? alive[0]?.host : undefined;
  }

  async close(): Promise<void> {
    for (const member of this.members.values()) if (member.up) await this.stop(member.host);
  }

  private inConfig(host: string): boolean {
    return this.config?.members.some((entry) => entry.host === host) ?? false;
  }

  private hello(member: Member, legacy: boolean): Document {
    const base = { maxBsonObjectSize: 16 * 1024 * 1024, maxMessageSizeBytes: 48_000_000, maxWriteBatchSize: 100_000, minWireVersion: 0, maxWireVersion: 25, ok: 1 };
    const writable = legacy ? 'ismaster' : 'isWritablePrimary';
    if (!this.inConfig(member.host)) {
      return {
        ...base,
        [writable]: false,
        secondary: false,
        ...(member.wasMember ? { setName: this.name } : {}),
        info: 'Does not have a valid replica set config',
        isreplicaset: true,
      };
    }
    member.wasMember = true;
    return {
      ...base,
      hosts: this.config!.members.map((entry) => entry.host),
      setName: this.config!._id,
      setVersion: this.config!.version,
      [writable]: this.primary === member.host,
      secondary: this.primary !== member.host,
      ...(this.primary ? { primary: this.primary } : {}),
      me: member.host,
    };
  }

  private error(code: number, codeName: string, errmsg: string): Document {
    return { ok: 0, code, codeName, errmsg };
  }

  /** Runs one command as `member`. */
  run(member: Member, command: Document): Document {
    const name = Object.keys(command)[0]!;
    this.log.push(`${member.host} ${name}`);
    const injected = this.injected.findIndex((entry) => entry.command === name);
    if (injected >= 0) {
      const [error] = this.injected.splice(injected, 1);
      return this.error(error!.code, error!.codeName, `injected ${error!.codeName}`);
    }
    switch (name) {
      case 'isMaster':
      case 'ismaster':
        return this.hello(member, true);
      case 'hello':
        return this.hello(member, false);
      case 'ping':
        return { ok: 1 };
      case 'replSetGetConfig':
        if (!this.inConfig(member.host)) return this.error(94, 'NotYetInitialized', 'no replset config has been received');
        return { config: this.config, ok: 1 };
      case 'replSetInitiate': {
        if (this.config) return this.error(23, 'AlreadyInitialized', 'already initialized');
        const config = command.replSetInitiate as FakeConfig;
        if (!config.members.some((entry) => entry.host === member.host)) return this.error(93, 'InvalidReplicaSetConfig', 'no member of the config is this node');
        this.config = { ...config, version: 1, term: 1, members: config.members.map((entry) => ({ votes: 1, priority: 1, ...entry })) };
        this.primary = member.host;
        return { ok: 1 };
      }
      case 'replSetReconfig': {
        if (this.primary !== member.host) return this.error(10107, 'NotWritablePrimary', 'not primary');
        const next = command.replSetReconfig as FakeConfig;
        if (next.version <= this.config!.version) {
          return this.error(103, 'NewReplicaSetConfigurationIncompatible', `version field value of ${next.version} is not greater than the current ${this.config!.version}`);
        }
        const voters = (config: FakeConfig) => new Set(config.members.filter((entry) => (entry.votes ?? 1) > 0).map((entry) => entry.host));
        const [before, after] = [voters(this.config!), voters(next)];
        const changed = [...before].filter((host) => !after.has(host)).length + [...after].filter((host) => !before.has(host)).length;
        if (changed > 1) return this.error(103, 'NewReplicaSetConfigurationIncompatible', 'only one voting member may be added or removed at a time');
        if (!next.members.some((entry) => entry.host === member.host)) return this.error(103, 'NewReplicaSetConfigurationIncompatible', 'the primary must be in the new config');
        this.config = { ...next, term: this.config!.term };
        return { ok: 1 };
      }
      case 'replSetStepDown': {
        if (this.primary !== member.host) return this.error(10107, 'NotWritablePrimary', "not primary so can't step down");
        const other = this.config!.members.find((entry) => entry.host !== member.host && this.members.get(entry.host)?.up);
        if (!other) return this.error(262, 'ExceededTimeLimit', 'No electable secondaries caught up');
        this.primary = other.host;
        return { ok: 1 };
      }
      default:
        return this.error(59, 'CommandNotFound', `no such command: '${name}'`);
    }
  }

  private serve(member: Member, socket: Socket): void {
    member.sockets.add(socket);
    socket.on('close', () => member.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= buffered.readInt32LE(0)) {
        const length = buffered.readInt32LE(0);
        const message = buffered.subarray(0, length);
        buffered = buffered.subarray(length);
        if (!member.up) return;
        const reply = this.reply(member, message);
        if (reply) socket.write(reply);
      }
    });
  }

  private reply(member: Member, message: Buffer): Buffer | undefined {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_QUERY) {
      // flags (4), full collection name (cstring), numberToSkip (4), numberToReturn (4), query
      const nameEnd = message.indexOf(0, 20);
      const query = BSON.deserialize(message.subarray(nameEnd + 9), { allowObjectSmallerThanBufferSize: true });
      const body = BSON.serialize(this.run(member, query));
      const header = Buffer.alloc(36);
      header.writeInt32LE(36 + body.length, 0);
      header.writeInt32LE(0, 4);
      header.writeInt32LE(requestId, 8);
      header.writeInt32LE(OP_REPLY, 12);
      header.writeInt32LE(0, 16); // responseFlags
      header.writeBigInt64LE(0n, 20); // cursorID
      header.writeInt32LE(0, 28); // startingFrom
      header.writeInt32LE(1, 32); // numberReturned
      return Buffer.concat([header, body]);
    }
    if (opCode === OP_MSG) {
      // flagBits (4), then a section of kind 0: the command
      if (message.readUInt8(20) !== 0) throw new Error('fake replica set: only OP_MSG section kind 0 is modelled');
      const { $db: _db, ...command } = BSON.deserialize(message.subarray(21), { allowObjectSmallerThanBufferSize: true });
      const body = BSON.serialize(this.run(member, command));
      const header = Buffer.alloc(21);
      header.writeInt32LE(21 + body.length, 0);
      header.writeInt32LE(0, 4);
      header.writeInt32LE(requestId, 8);
      header.writeInt32LE(OP_MSG, 12);
      header.writeUInt32LE(0, 16);
      header.writeUInt8(0, 20);
      return Buffer.concat([header, body]);
    }
    throw new Error(`fake replica set: opCode ${opCode} is not modelled`);
  }
}
