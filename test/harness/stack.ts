/**
 * Real servers for integration tests: a headless Temporal dev server and SeaweedFS, on free
 * loopback ports with throw-away data folders, started by the same code as `npm start`.
 * In a describe block, `useTestStack()` starts them before the first test and stops them after
 * the last, even when a test failed; elsewhere call `startTestStack()` and its `stop()`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { S3Settings, TemporalSettings } from '../../common/config';
import type { ChildHandle } from '../../common/child-process';
import { ObjectStore } from '../../datapath/object-store';
import { RunbookStore } from '../../runbooks/store';
import { freePort, freePortWithGrpcCompanion } from '../../stack/ports';
import { startSeaweedFs } from '../../stack/seaweedfs';
import { startTemporalDevServer } from '../../stack/temporal-dev-server';
import { dataConverter } from '../../common/payload-compression';

export interface TestStack {
  dir: string;
  temporalSettings: TemporalSettings;
  client: Client;
  nativeConnection: NativeConnection;
  temporalProcess: ChildHandle;
  s3Settings: S3Settings;
  s3Client: S3Client;
  s3Process: ChildHandle;
  /** SIGKILLs the Temporal server and starts it again on the same port and database, as a crash and restart would. */
  restartTemporal(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestStackOptions {
  /** Keep the data folder after stop (for debugging a failure); also DR_KEEP_TEST_DATA=1. */
  keepData?: boolean;
  /** The Temporal server's SQLite pragmas, if not the product's (bench/temporal-sqlite.ts compares). */
  temporalSqlitePragmas?: readonly string[];
}

let runtimeInstalled = false;

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  if (!runtimeInstalled) {
    // Worker state chatter would drown the test report; warnings and errors still show.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-test-'));
  const keepData = options.keepData || process.env.DR_KEEP_TEST_DATA === '1';
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (!keepData) rmSync(dir, { recursive: true, force: true });
  };
  // Data about to be deleted needs no orderly shutdown, which takes SeaweedFS 2.3 s and Temporal
  // 1.1 s: a stack per test file made that minutes of every CI run. Kept data is stopped politely.
  const ending = (server: ChildHandle) => (keepData ? server.stop() : server.kill());
  try {
    const { temporal, s3, temporalOptions } = await startServers(dir, options.temporalSqlitePragmas);
    let temporalProcess = temporal.process;
    cleanups.push(() => ending(temporalProcess), () => ending(s3.process));
    const connection = await Connection.connect({ address: temporal.address });
    const nativeConnection = await NativeConnection.connect({ address: temporal.address });
    cleanups.push(() => connection.close(), () => nativeConnection.close());
    cleanups.push(() => Promise.resolve(s3.client.destroy()));
    return {
      dir,
      temporalSettings: { address: temporal.address, namespace: 'default', embedded: true, uiPort: 0 },
      client: new Client({ connection, namespace: 'default', dataConverter }),
      nativeConnection,
      get temporalProcess() {
        return temporalProcess;
      },
      restartTemporal: async () => {
        await temporalProcess.kill();
        temporalProcess = (await startTemporalDevServer(temporalOptions)).process;
      },
      s3Settings: s3.settings,
      s3Client: s3.client,
      s3Process: s3.process,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Both servers on fresh ports. Ports are picked free but bound only later, by the servers, so a
 * server started by a parallel test file can take one in between, and a loaded machine can be
 * slow to start SeaweedFS: a failed attempt stops whatever it started and tries new ports.
 */
async function startServers(dir: string, sqlitePragmas: readonly string[] | undefined, attempts = 3) {
  const failures: string[] = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const at = path.join(dir, `attempt-${attempt}`);
    const [temporalPort, s3Port, master, volume, filer, admin] = await Promise.all([
      freePort(),
      freePortWithGrpcCompanion(),
      freePortWithGrpcCompanion(),
      freePortWithGrpcCompanion(),
      freePortWithGrpcCompanion(),
      freePortWithGrpcCompanion(),
    ]);
    mkdirSync(at, { recursive: true });
    const temporalOptions = { port: temporalPort, dbFile: path.join(at, 'temporal.db'), namespace: 'default', logFile: path.join(at, 'temporal.log'), ...(sqlitePragmas ? { sqlitePragmas } : {}) };
    const [temporal, s3] = await Promise.allSettled([
      startTemporalDevServer(temporalOptions),
      startSeaweedFs({
        dataDir: path.join(at, 's3'),
        ports: { s3: s3Port, master, volume, filer, admin },
        credentials: { accessKeyId: `test${randomBytes(6).toString('hex')}`, secretAccessKey: randomBytes(24).toString('base64url') },
        bucket: 'dr-test',
        region: 'us-east-1',
        logFile: path.join(at, 'seaweedfs.log'),
      }),
    ]);
    if (temporal.status === 'fulfilled' && s3.status === 'fulfilled') return { temporal: temporal.value, s3: s3.value, temporalOptions };
    for (const started of [temporal, s3]) if (started.status === 'fulfilled') await started.value.process.stop();
    for (const failed of [temporal, s3]) if (failed.status === 'rejected') failures.push(`attempt ${attempt}: ${(failed.reason as Error).message}`);
  }
  throw new Error(`the test servers did not start:\n${failures.join('\n')}`);
}

/** The environment of the product's processes (workers, API) that use this stack. */
export function productEnvironment(stack: TestStack): NodeJS.ProcessEnv {
  const s3 = stack.s3Settings;
  return {
    ...process.env,
    TEMPORAL_ADDRESS: stack.temporalSettings.address,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    S3_ACCESS_KEY_ID: s3.credentials?.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.credentials?.secretAccessKey,
    DR_DATA_DIR: stack.dir,
    DR_LOG_DIR: stack.dir,
  };
}

/** The stack and the stores tests read and write through, under `settings.prefix`. */
export interface TestStorage {
  stack: TestStack;
  /** The stack's S3 settings, with the prefix asked for. */
  settings: S3Settings;
  store: ObjectStore;
  runbooks: RunbookStore;
}

export function testStorage(stack: TestStack, prefix?: string): TestStorage {
  const settings = prefix === undefined ? stack.s3Settings : { ...stack.s3Settings, prefix };
  return { stack, settings, store: new ObjectStore(stack.s3Client, settings), runbooks: new RunbookStore(stack.s3Client, settings) };
}

/**
 * The test stack for the tests of a describe block; `prefix` (as a storage site shared by several
 * deployments would use) applies to `settings` and the stores.
 */
export function useTestStack(options: TestStackOptions & { prefix?: string } = {}): TestStorage {
  return useFixture(
    'the test stack',
    async () => testStorage(await startTestStack(options), options.prefix),
    ({ stack }) => stack.stop(),
  );
}

/** Fixtures started and not yet stopped, in start order. */
const live: Array<() => Promise<void>> = [];

/**
 * Set-up for the tests of a describe block: `start` runs in a `before` hook, `stop` in an `after`
 * hook, also when a test or a later set-up failed. Fixtures stop in the reverse order of their
 * start (node runs `after` hooks in the order they were declared), so a fixture may use those
 * declared before it.
 *
 * What `start` resolves to is returned at once, as a stand-in that can be destructured in the
 * describe body: `const { stack, store } = useTestStack()`. Each part stands for the started one
 * from the first hook after this one on, and names itself in an error when used before. Read a
 * part that is a string or a number through its owner (`api.url`), not as a destructured const.
 */
export function useFixture<T extends object>(what: string, start: () => Promise<T>, stop: (value: T) => Promise<void>): T {
  let current: T | undefined;
  let stopCurrent: (() => Promise<void>) | undefined;
  before(async () => {
    const value = await start();
    current = value;
    stopCurrent = () => stop(value);
    live.push(stopCurrent);
  });
  after(async () => {
    const at = stopCurrent ? live.indexOf(stopCurrent) : -1;
    if (at < 0) return;
    const errors: unknown[] = [];
    for (const stopOne of live.splice(at).reverse()) await stopOne().catch((error: unknown) => errors.push(error));
    if (errors.length > 0) throw errors[0];
  });
  return standIn(what, () => current);
}

/** A proxy for the object `resolve` returns once it is there; before, its properties are stand-ins too. */
function standIn<T extends object>(what: string, resolve: () => unknown): T {
  const target = (): object => {
    const value = resolve();
    if (value === undefined) throw new Error(`${what} is used before the before() hook that starts it ran`);
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null) throw new Error(`${what} is a ${typeof value}: read it through its owner`);
    return value;
  };
  return new Proxy({} as T, {
    get(_, key) {
      if (resolve() === undefined) {
        // `await` and inspection look for these; anything else is a part destructured early.
        if (key === 'then' || typeof key === 'symbol') return undefined;
        return standIn<object>(`${what}.${key}`, (): unknown => (resolve() === undefined ? undefined : Reflect.get(target(), key)));
      }
      const value = target();
      const property: unknown = Reflect.get(value, key, value);
      return typeof property === 'function' ? (property as (...args: unknown[]) => unknown).bind(value) : property;
    },
    set: (_, key, property) => Reflect.set(target(), key, property),
    has: (_, key) => Reflect.has(target(), key),
    ownKeys: () => Reflect.ownKeys(target()),
    getOwnPropertyDescriptor: (_, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(target(), key);
      return descriptor && { ...descriptor, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(target()),
  });
}
