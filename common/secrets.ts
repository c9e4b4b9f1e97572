import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { OperatorError } from './errors';

/**
 * Named secrets that runbooks refer to by name only (webhook headers, for example). Values live
 * in a 0600 JSON file beside the other secrets of the installation, never in a runbook, a
 * workflow's history or a log: activities resolve them at the moment of use.
 */
const SecretFileSchema = z.record(z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/), z.string());

export class SecretNotFoundError extends OperatorError {
  constructor(name: string, file: string) {
    super(`secret "${name}" is not defined in ${file}`);
    this.name = 'SecretNotFoundError';
  }
}

export interface SecretResolver {
  resolve(name: string): Promise<string>;
}

export function fileSecretResolver(file: string): SecretResolver {
  return {
    async resolve(name) {
      let raw: string;
      try {
        raw = await readFile(file, 'utf8');
      } catch {
        throw new SecretNotFoundError(name, file);
      }
      const parsed = SecretFileSchema.safeParse(JSON.parse(raw));
      if (!parsed.success) throw new OperatorError(`secret file ${file} is invalid: ${z.prettifyError(parsed.error)}`);
      const value = parsed.data[name];
      if (value === undefined) throw new SecretNotFoundError(name, file);
      return value;
    },
  };
}
