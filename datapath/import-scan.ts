import { listBases } from './base-image';
import { DomainKeys, domainsPrefix } from './keys';
import type { ObjectStore } from './object-store';
import { Ownership } from './ownership';
import { manifestSchema, parseRecord, restorePointSchema } from './records';

export interface ImportableDomain {
  domain: string;
  ownerSite?: string;
  epoch: number;
  protectedSite?: string;
  protectionWindowMs?: number;
  latestRestorePoint?: { id: string; timestamp: number };
  /** The newest committed base: rehydration can start from it without any older log. */
  latestBase?: { id: string; kind: 'initial-sync' | 'compaction' };
  /** Why the domain cannot be imported as is (a damaged manifest, say); the others are still listed. */
  problem?: string;
}

/**
 * Lists the domains a storage site holds, from the bucket alone, so that a recovery site can
 * import a domain with no contact to its primary. A damaged object makes its domain's entry carry
 * a `problem` instead of failing the scan.
 */
export async function scanDomains(store: ObjectStore): Promise<ImportableDomain[]> {
  const root = domainsPrefix(store.prefix);
  const { prefixes } = await store.list(root, { delimiter: '/' });
  return Promise.all(
    prefixes.map(async (prefix): Promise<ImportableDomain> => {
      const domain = prefix.slice(root.length, -1);
      const entry: ImportableDomain = { domain, epoch: 0 };
      const problems: string[] = [];
      // Each part is read on its own, so that one damaged object hides nothing else.
      const part = async (read: () => Promise<void>) => {
        try {
          await read();
        } catch (error) {
          problems.push((error as Error).message);
        }
      };
      let keys: DomainKeys;
      try {
        keys = new DomainKeys(store.prefix, domain);
      } catch (error) {
        return { ...entry, problem: (error as Error).message };
      }
      const ownership = new Ownership(store, domain);
      await Promise.all([
        part(async () => {
          const state = await ownership.inspect();
          entry.epoch = state.epoch;
          entry.ownerSite = state.owner?.site;
        }),
        part(async () => {
          const body = await store.get(keys.manifest());
          if (!body) throw new Error(`no manifest at ${keys.manifest()}`);
          const manifest = parseRecord(manifestSchema, keys.manifest(), body);
          entry.protectedSite = manifest.protectedSite;
          entry.protectionWindowMs = manifest.protectionWindowMs;
        }),
        part(async () => {
          // Point ids are log positions, so the lexically last key is the latest point.
          const latest = (await store.list(keys.pointsPrefix())).keys.at(-1);
          if (!latest) return;
          const point = parseRecord(restorePointSchema, latest, (await store.get(latest))!);
          entry.latestRestorePoint = { id: point.id, timestamp: point.timestamp };
        }),
        part(async () => {
          const base = (await listBases(store, ownership)).at(-1);
          if (base) entry.latestBase = { id: base.id, kind: base.kind };
        }),
      ]);
      return problems.length > 0 ? { ...entry, problem: problems.join('; ') } : entry;
    }),
  );
}
