import path from 'node:path';
import { z } from 'zod';
import { OperatorError } from './errors';

/**
 * Where the stack's servers are. Unset TEMPORAL_ADDRESS / S3_ENDPOINT mean "use the embedded
 * server that `npm start` runs on loopback"; setting them points the same workers and API at an
 * existing Temporal cluster or S3 store instead.
 */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number().int().min(1).max(65535);

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'must be host:port, e.g. temporal.example.com:7233');

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://s3.eu-west-1.amazonaws.com' });

export const EnvironmentSchema = z.object({
  DR_DATA_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, '.data')),
  DR_LOG_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, '.logs')),

  TEMPORAL_ADDRESS: hostPort.optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TLS: booleanString.default(false),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  DR_TEMPORAL_PORT: port.default(7233),
  DR_TEMPORAL_UI_PORT: port.default(8233),

  S3_ENDPOINT: httpUrl.optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)')
    .default('dr-storage'),
  S3_PREFIX: z
    .string()
    .regex(/^([A-Za-z0-9._-]+\/)*$/, 'must be empty or end with "/", e.g. "site-a/"')
    .default(''),
  S3_FORCE_PATH_STYLE: booleanString.default(true),
  DR_S3_PORT: port.default(8333),

  DR_API_HOST: z.string().min(1).default('127.0.0.1'),
  DR_API_PORT: port.default(8080),

  /** A worker's liveness probe (worker/liveness.ts): off unless a port is given. */
  DR_WORKER_HEALTH_PORT: port.optional(),
  DR_WORKER_HEALTH_HOST: z.string().min(1).default('127.0.0.1'),

  /** Worker capacity: unset, the Temporal SDK's defaults, which bench/worker-options.ts measured (worker/main.ts says why). */
  DR_WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).optional(),
  DR_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce.number().int().min(2).optional(),
  DR_WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).optional(),

  /** How long a stopping worker waits for activities that have not ended on their cancel before it exits anyway. */
  DR_WORKER_SHUTDOWN_FORCE_MS: z.coerce.number().int().min(1_000).default(30_000),

  /** Log segments larger than this are uploaded ahead and referred to (docs/storage-format.md); default 1 MiB. */
  DR_SEGMENT_INLINE_MAX_BYTES: z.coerce.number().int().min(0).max(64 * 1024 * 1024).optional(),
  /** What a site worker's replicators may hold, together, in segments read and uploaded ahead of the ones they commit; default 128. */
  DR_REPLICATION_STAGING_MIB: z.coerce.number().int().min(0).max(64 * 1024).optional(),
  /** How many rehydrations a site worker runs at once; default 4. */
  DR_REHYDRATIONS_AT_ONCE: z.coerce.number().int().min(1).max(1_000).optional(),
});

export type Environment = z.output<typeof EnvironmentSchema>;

export interface TemporalSettings {
  /** host:port of the frontend; for the embedded server, filled in by the launcher. */
  address: string;
  namespace: string;
  embedded: boolean;
  tls?: { certPath?: string; keyPath?: string; caPath?: string };
  apiKey?: string;
  uiPort: number;
}

export interface S3Settings {
  endpoint: string;
  region: string;
  bucket: string;
  /** Prefix inside the bucket under which this storage site keeps everything. */
  prefix: string;
  forcePathStyle: boolean;
  embedded: boolean;
  /** Absent for an external store: the AWS SDK's default credential chain applies. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export interface Settings {
  dataDir: string;
  logDir: string;
  temporal: TemporalSettings;
  s3: S3Settings;
  api: { host: string; port: number };
  workerHealth?: { host: string; port: number };
  /** What the operator set of a worker's capacity, as Temporal's worker options; the rest is the SDK's default. */
  workerCapacity: WorkerCapacity;
  /** How a site worker writes log segments, where the operator set it. */
  segmentWriting: { inlineMaxBytes?: number; stagingAheadBytes?: number };
  /** How many rehydrations a site worker runs at once, where the operator set it. */
  rehydrationsAtOnce?: number;
  /** How long a stopping worker waits for its cancelled activities to end before it exits without them. */
  workerShutdownForceMs: number;
}

export interface WorkerCapacity {
  maxCachedWorkflows?: number;
  maxConcurrentWorkflowTaskExecutions?: number;
  maxConcurrentActivityTaskExecutions?: number;
}

/** Validates the environment; every problem is reported at once, each naming its variable. */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const parsed = EnvironmentSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = issue.path.join('.');
      const value = env[name];
      const shown = value === undefined || /SECRET|KEY|TOKEN/.test(name) ? '' : ` (got "${value}")`;
      return `  ${name}: ${issue.message}${shown}`;
    });
    throw new OperatorError(`Invalid configuration in the environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (Boolean(e.TEMPORAL_TLS_CERT_PATH) !== Boolean(e.TEMPORAL_TLS_KEY_PATH)) {
    throw new OperatorError('Invalid configuration: TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together (mTLS).');
  }
  if (Boolean(e.S3_ACCESS_KEY_ID) !== Boolean(e.S3_SECRET_ACCESS_KEY)) {
    throw new OperatorError('Invalid configuration: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together.');
  }
  if (!e.TEMPORAL_ADDRESS && (e.TEMPORAL_TLS || e.TEMPORAL_API_KEY)) {
    throw new OperatorError('Invalid configuration: TEMPORAL_TLS / TEMPORAL_API_KEY need TEMPORAL_ADDRESS (the embedded server runs without TLS on loopback).');
  }
  return e;
}

/**
 * Settings for processes that connect to the servers. For embedded servers the S3 credentials
 * are the ones the launcher generated into the data folder (passed as S3_* variables to children).
 */
export function settingsFrom(e: Environment): Settings {
  const tlsWanted = e.TEMPORAL_TLS || Boolean(e.TEMPORAL_TLS_CERT_PATH);
  return {
    dataDir: e.DR_DATA_DIR,
    logDir: e.DR_LOG_DIR,
    temporal: {
      address: e.TEMPORAL_ADDRESS ?? `127.0.0.1:${e.DR_TEMPORAL_PORT}`,
      namespace: e.TEMPORAL_NAMESPACE,
      embedded: !e.TEMPORAL_ADDRESS,
      uiPort: e.DR_TEMPORAL_UI_PORT,
      ...(tlsWanted
        ? { tls: { certPath: e.TEMPORAL_TLS_CERT_PATH, keyPath: e.TEMPORAL_TLS_KEY_PATH, caPath: e.TEMPORAL_TLS_CA_PATH } }
        : {}),
      ...(e.TEMPORAL_API_KEY ? { apiKey: e.TEMPORAL_API_KEY } : {}),
    },
    s3: {
      endpoint: e.S3_ENDPOINT ?? `http://127.0.0.1:${e.DR_S3_PORT}`,
      region: e.S3_REGION,
      bucket: e.S3_BUCKET,
      prefix: e.S3_PREFIX,
      forcePathStyle: e.S3_FORCE_PATH_STYLE,
      embedded: !e.S3_ENDPOINT,
      ...(e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY
        ? { credentials: { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY } }
        : {}),
    },
    api: { host: e.DR_API_HOST, port: e.DR_API_PORT },
    ...(e.DR_WORKER_HEALTH_PORT ? { workerHealth: { host: e.DR_WORKER_HEALTH_HOST, port: e.DR_WORKER_HEALTH_PORT } } : {}),
    workerCapacity: {
      ...(e.DR_WORKER_MAX_CACHED_WORKFLOWS !== undefined ? { maxCachedWorkflows: e.DR_WORKER_MAX_CACHED_WORKFLOWS } : {}),
      ...(e.DR_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS !== undefined ? { maxConcurrentWorkflowTaskExecutions: e.DR_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS } : {}),
      ...(e.DR_WORKER_MAX_CONCURRENT_ACTIVITIES !== undefined ? { maxConcurrentActivityTaskExecutions: e.DR_WORKER_MAX_CONCURRENT_ACTIVITIES } : {}),
    },
    segmentWriting: {
      ...(e.DR_SEGMENT_INLINE_MAX_BYTES !== undefined ? { inlineMaxBytes: e.DR_SEGMENT_INLINE_MAX_BYTES } : {}),
      ...(e.DR_REPLICATION_STAGING_MIB !== undefined ? { stagingAheadBytes: e.DR_REPLICATION_STAGING_MIB * 1024 * 1024 } : {}),
    },
    workerShutdownForceMs: e.DR_WORKER_SHUTDOWN_FORCE_MS,
    ...(e.DR_REHYDRATIONS_AT_ONCE !== undefined ? { rehydrationsAtOnce: e.DR_REHYDRATIONS_AT_ONCE } : {}),
  };
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return settingsFrom(readEnvironment(env));
}
