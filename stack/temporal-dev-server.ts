import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { startChild, waitUntilReady, type ChildHandle } from '../common/child-process';
import { TEMPORAL_BINARY } from './servers';

export interface TemporalDevServerOptions {
  port: number;
  /** Omit for a headless server (tests). */
  uiPort?: number;
  /** SQLite file: state survives restarts of the server. */
  dbFile: string;
  namespace: string;
  logFile: string;
}

export interface TemporalDevServer {
  address: string;
  uiUrl?: string;
  process: ChildHandle;
}

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
    '--namespace',
    o.namespace,
    '--log-format',
    'json',
    '--log-level',
    'warn',
    ...(o.uiPort ? ['--ui-ip', '127.0.0.1', '--ui-port', String(o.uiPort)] : ['--headless']),
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
