import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { startChild, waitUntilReady, type ChildHandle } from '../common/child-process';
import { TEMPORAL_BINARY } from './servers';

export interface TemporalDevServerOptions {
  port: number;
  /** Omit for a headless server (tests). */
  uiPort?: number;
  /** The remote codec the UI decodes compressed payloads with (`api/payload-codec.ts`). */
  uiCodecEndpoint?: string;
  /** SQLite file: state survives restarts of the server. */
  dbFile: string;
  /** `PRAGMA=VALUE` statements for the SQLite file; default `DEFAULT_SQLITE_PRAGMAS`, `[]` for SQLite's own defaults. */
  sqlitePragmas?: readonly string[];
  namespace: string;
  logFile: string;
}

export interface TemporalDevServer {
  address: string;
  uiUrl?: string;
  process: ChildHandle;
}

/**
 * A write-ahead log, synced at checkpoints rather than at every commit. With SQLite's defaults (a
 * rollback journal, every commit synced) the server spent 11.6 s of CPU on 10 domains of 20 VMs
 * failing over, against 8.3 s, and the failovers took 19.1 s against 16.1 s (medians of 3
 * interleaved runs, bench/results/temporal-sqlite.json); beside a CI run, whose tests sync the disk
 * too, 25 s against 16 s. A SIGKILLed server loses nothing (the tests kill it); after
 * a power loss the database is consistent but may miss the last commits, which an embedded
 * single-machine stack accepts: production runs against a Temporal cluster (docs/deployment.md).
 */
export const DEFAULT_SQLITE_PRAGMAS: readonly string[] = ['journal_mode=wal', 'synchronous=normal'];

/** The Temporal CLI's dev server on 127.0.0.1, with our search attributes registered at start. */
export async function startTemporalDevServer(o: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(o.port),
    '--db-filename',
    o.dbFile,
    ...(o.sqlitePragmas ?? DEFAULT_SQLITE_PRAGMAS).flatMap((pragma) => ['--sqlite-pragma', pragma]),
    '--namespace',
    o.namespace,
    '--log-format',
    'json',
    '--log-level',
    'warn',
    ...(o.uiPort ? ['--ui-ip', '127.0.0.1', '--ui-port', String(o.uiPort), ...(o.uiCodecEndpoint ? ['--ui-codec-endpoint', o.uiCodecEndpoint] : [])] : ['--headless']),
    ...ALL_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${searchAttributeTypeName(key.type)}`]),
  ];
  const child = startChild({ name: 'temporal', command: TEMPORAL_BINARY, args, logFile: o.logFile, cwd: path.dirname(o.dbFile) });
  const address = `127.0.0.1:${o.port}`;
  await waitUntilReady(child, async () => {
    const connection = await Connection.connect({ address, connectTimeout: '1s' });
    try {
      await connection.workflowService.describeNamespace({ namespace: o.namespace });
    } finally {
      await connection.close();
    }
  });
  return { address, ...(o.uiPort ? { uiUrl: `http://127.0.0.1:${o.uiPort}` } : {}), process: child };
}

function searchAttributeTypeName(type: string): string {
  // The CLI spells types like the API enum (Keyword, Text, Int, Double, Bool, Datetime, KeywordList).
  const names: Record<string, string> = {
    KEYWORD: 'Keyword',
    TEXT: 'Text',
    INT: 'Int',
    DOUBLE: 'Double',
    BOOL: 'Bool',
    DATETIME: 'Datetime',
    KEYWORD_LIST: 'KeywordList',
  };
  const name = names[type];
  if (!name) throw new Error(`unknown search attribute type ${type}`);
  return name;
}
