import { readFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalSettings } from './config';
import { describeError, OperatorError } from './errors';
import { dataConverter } from './payload-compression';

async function tlsOptions(t: TemporalSettings) {
  if (!t.tls) return undefined;
  const read = async (p?: string) => (p ? readFile(p) : undefined);
  const [crt, key, ca] = await Promise.all([read(t.tls.certPath), read(t.tls.keyPath), read(t.tls.caPath)]);
  return {
    ...(crt && key ? { clientCertPair: { crt, key } } : {}),
    ...(ca ? { serverRootCACertificate: ca } : {}),
  };
}

function unreachable(t: TemporalSettings, error: unknown): OperatorError {
  return new OperatorError(`Temporal at ${t.address} (namespace "${t.namespace}") is unreachable: ${describeError(error)}`, {
    cause: error,
  });
}

/** A client connection; the error names the address instead of surfacing a gRPC stack trace. */
export async function connectClient(t: TemporalSettings): Promise<Client> {
  try {
    const connection = await Connection.connect({
      address: t.address,
      tls: await tlsOptions(t),
      ...(t.apiKey ? { apiKey: t.apiKey } : {}),
      connectTimeout: '5s',
    });
    await connection.workflowService.describeNamespace({ namespace: t.namespace });
    return new Client({ connection, namespace: t.namespace, dataConverter });
  } catch (error) {
    throw unreachable(t, error);
  }
}

export async function connectWorker(t: TemporalSettings): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({
      address: t.address,
      tls: await tlsOptions(t),
      ...(t.apiKey ? { apiKey: t.apiKey } : {}),
    });
  } catch (error) {
    throw unreachable(t, error);
  }
}
