import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { OperatorError } from '../common/errors';
import { SiteClient } from './client';
import type { SiteDefinition } from './config';

/** Site name -> API token; written by the launcher into the data folder (0600), read by the API. */
export function readSiteTokens(file: string): Record<string, string> {
  try {
    return z.record(z.string(), z.string().min(16)).parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (error) {
    throw new OperatorError(`cannot read site tokens ${file}: ${(error as Error).message}`);
  }
}

/** Clients for the embedded stack's simulated sites, by name. */
export function siteClients(definitions: SiteDefinition[], tokens: Record<string, string>): Map<string, SiteClient> {
  return new Map(
    definitions
      .filter((d) => tokens[d.name])
      .map((d) => [d.name, new SiteClient({ site: d.name, url: `http://127.0.0.1:${d.port}`, token: tokens[d.name], timeoutMs: 5_000 })]),
  );
}
