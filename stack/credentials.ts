import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateToken, hashToken, type Role, type TokenFile } from '../api/auth';

/**
 * Secrets of the embedded stack, generated on first start and kept in the data folder (0600):
 * nothing secret is committed or printed. The API reads only token hashes; the plain tokens are
 * in a separate file for the local operator (and the demo) to use.
 */
export interface EmbeddedSecrets {
  s3: { accessKeyId: string; secretAccessKey: string };
  apiTokensFile: string;
  apiTokenPlainFile: string;
}

const DEFAULT_PRINCIPALS: Array<{ name: string; role: Role }> = [
  { name: 'local-admin', role: 'admin' },
  { name: 'local-operator', role: 'operator' },
  { name: 'local-viewer', role: 'viewer' },
];

function writeSecret(file: string, content: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content, { mode: 0o600 });
}

export function ensureEmbeddedSecrets(dataDir: string): EmbeddedSecrets {
  const s3File = path.join(dataDir, 'secrets', 's3-credentials.json');
  if (!existsSync(s3File)) {
    writeSecret(
      s3File,
      JSON.stringify({ accessKeyId: `dr${randomBytes(8).toString('hex')}`, secretAccessKey: randomBytes(30).toString('base64url') }),
    );
  }
  const apiTokensFile = path.join(dataDir, 'api-tokens.json');
  const apiTokenPlainFile = path.join(dataDir, 'secrets', 'api-tokens.plain.json');
  if (!existsSync(apiTokensFile) || !existsSync(apiTokenPlainFile)) {
    const plain = DEFAULT_PRINCIPALS.map((p) => ({ ...p, token: generateToken() }));
    const hashed: TokenFile = { tokens: plain.map((p) => ({ name: p.name, role: p.role, sha256: hashToken(p.token) })) };
    writeSecret(apiTokenPlainFile, JSON.stringify({ tokens: plain }, null, 2));
    writeSecret(apiTokensFile, JSON.stringify(hashed, null, 2));
  }
  return { s3: JSON.parse(readFileSync(s3File, 'utf8')) as EmbeddedSecrets['s3'], apiTokensFile, apiTokenPlainFile };
}

/** The plain token of a local principal, for the demo and local CLI use. */
export function readLocalToken(dataDir: string, role: Role): string {
  const file = path.join(dataDir, 'secrets', 'api-tokens.plain.json');
  const { tokens } = JSON.parse(readFileSync(file, 'utf8')) as { tokens: Array<{ role: Role; token: string }> };
  const found = tokens.find((t) => t.role === role);
  if (!found) throw new Error(`no local ${role} token in ${file}`);
  return found.token;
}

/** One API token per simulated site, generated once; sites and their workers get theirs by environment. */
export function ensureSiteTokens(dataDir: string, sites: string[]): { file: string; tokens: Record<string, string> } {
  const file = path.join(dataDir, 'secrets', 'site-tokens.json');
  const tokens = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
  const missing = sites.filter((s) => !tokens[s]);
  for (const site of missing) tokens[site] = randomBytes(24).toString('base64url');
  if (missing.length > 0 || !existsSync(file)) writeSecret(file, JSON.stringify(tokens, null, 2));
  return { file, tokens };
}
