/**
 * Real servers for integration tests: a headless Temporal dev server and SeaweedFS, on free
 * loopback ports with throw-away data folders, started by the same code as `npm start`.
 * Call `stop()` in an `after` hook: it stops both even when the test failed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { S3Settings, TemporalSettings } from '../../common/config';
import type { ChildHandle } from '../../common/child-process';
import { freePort, freePortWithGrpcCompanion } from '../../stack/ports';
import { startSeaweedFs } from '../../stack/seaweedfs';
import { startTemporalDevServer } from '../../stack/temporal-dev-server';

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
}

let runtimeInstalled = false;

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  if (!runtimeInstalled) {
    // Worker state chatter would drown the test report; warnings and errors still show.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-test-'));
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (!(options.keepData || process.env.DR_KEEP_TEST_DATA === '1')) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [temporalPort, s3Port, master, volume, filer, admin] = await Promise.all([
      freePort(),
      freePortWithGrpcCompanion(),
      freePortWithGrpcCompanion(),
      freePortWithGrpcCompanion(),
      freePortWithGrpcCompanion(),
      freePortWithGrpcCompanion(),
    ]);
    const temporalOptions = { port: temporalPort, dbFile: path.join(dir, 'temporal.db'), namespace: 'default', logFile: path.join(dir, 'temporal.log') };
    const [temporal, s3] = await Promise.all([
      startTemporalDevServer(temporalOptions),
      startSeaweedFs({
        dataDir: path.join(dir, 's3'),
        ports: { s3: s3Port, master, volume, filer, admin },
        credentials: { accessKeyId: `test${randomBytes(6).toString('hex')}`, secretAccessKey: randomBytes(24).toString('base64url') },
        bucket: 'dr-test',
        region: 'us-east-1',
        logFile: path.join(dir, 'seaweedfs.log'),
      }),
    ]).catch(async (error: unknown) => {
      await stop();
      throw error;
    });
    let temporalProcess = temporal.process;
    cleanups.push(() => temporalProcess.stop(), () => s3.process.stop());
    const connection = await Connection.connect({ address: temporal.address });
    const nativeConnection = await NativeConnection.connect({ address: temporal.address });
    cleanups.push(() => connection.close(), () => nativeConnection.close());
    cleanups.push(() => Promise.resolve(s3.client.destroy()));
    return {
      dir,
      temporalSettings: { address: temporal.address, namespace: 'default', embedded: true, uiPort: 0 },
      client: new Client({ connection, namespace: 'default' }),
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
