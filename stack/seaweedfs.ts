import { writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../common/config';
import { createS3Client } from '../common/s3';
import { startChild, waitUntilReady, type ChildHandle } from '../common/child-process';
import { WEED_BINARY } from './servers';

export interface SeaweedFsPorts {
  s3: number;
  master: number;
  volume: number;
  filer: number;
  admin: number;
}

/** Ports of the internal components next to the S3 port (their gRPC ports are these + 10000). */
export function portsBesideS3(s3: number): SeaweedFsPorts {
  return { s3, master: s3 + 1, volume: s3 + 2, filer: s3 + 3, admin: s3 + 4 };
}

export interface SeaweedFsOptions {
  dataDir: string;
  ports: SeaweedFsPorts;
  credentials: { accessKeyId: string; secretAccessKey: string };
  bucket: string;
  region: string;
  logFile: string;
}

export interface SeaweedFs {
  settings: S3Settings;
  client: S3Client;
  process: ChildHandle;
}

/**
 * SeaweedFS in its all-in-one `mini` mode as the embedded storage site: loopback only, one
 * identity whose credentials are required (an empty identity list would switch auth off), the
 * bucket created at start. WebDAV, Iceberg, Lance and the admin UI are not used and stay off.
 */
export async function startSeaweedFs(o: SeaweedFsOptions): Promise<SeaweedFs> {
  mkdirSync(o.dataDir, { recursive: true });
  const identitiesFile = path.join(o.dataDir, 's3-identities.json');
  writeFileSync(
    identitiesFile,
    JSON.stringify({
      identities: [
        {
          name: 'dr-orchestrator',
          credentials: [{ accessKey: o.credentials.accessKeyId, secretKey: o.credentials.secretAccessKey }],
          actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
        },
      ],
    }),
    { mode: 0o600 },
  );
  chmodSync(identitiesFile, 0o600);
  const { ports } = o;
  const args = [
    // glog would otherwise scatter files into /tmp; stderr goes to the component's log file.
    '-logtostderr',
    'mini',
    `-dir=${o.dataDir}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-s3.port=${ports.s3}`,
    `-master.port=${ports.master}`,
    `-volume.port=${ports.volume}`,
    `-filer.port=${ports.filer}`,
    `-admin.port=${ports.admin}`,
    '-admin.ui=false',
    '-webdav=false',
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.config=${identitiesFile}`,
    `-bucket=${o.bucket}`,
  ];
  const child = startChild({ name: 'seaweedfs', command: WEED_BINARY, args, logFile: o.logFile, cwd: o.dataDir });
  const settings: S3Settings = {
    endpoint: `http://127.0.0.1:${ports.s3}`,
    region: o.region,
    bucket: o.bucket,
    prefix: '',
    forcePathStyle: true,
    embedded: true,
    credentials: o.credentials,
  };
  const client = createS3Client(settings);
  await waitUntilReady(child, () => client.send(new HeadBucketCommand({ Bucket: o.bucket })));
  return { settings, client, process: child };
}
