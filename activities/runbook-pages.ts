import { failure } from '../common/failures';
import type { StoredRunbook } from '../runbooks/store';
import { validateRunbook } from '../runbooks/validate';

/**
 * Characters of a runbook's JSON per page: at most 3 bytes each in UTF-8, a page stays under
 * Temporal's 2 MB per payload (a runbook of 10,000 VMs is some 2.4 MB of JSON: five pages).
 */
export const RUNBOOK_PAGE_CHARS = 500_000;

/** Runbook versions whose validated JSON a worker keeps between the pages an operation reads. */
const KEPT_VERSIONS = 4;

/** What the pages are read from: the runbook store (`runbooks/store.ts`). */
export interface RunbookVersions {
  get(name: string, version: number): Promise<Pick<StoredRunbook, 'text'> | undefined>;
}

export interface RunbookPage {
  text: string;
  pages: number;
}

/**
 * An operation reads the runbook it runs by from the storage site by name and version, page by
 * page, instead of carrying it whole in its input (and in its desk's request). A version never
 * changes once stored, so every page of it, on any worker and in any retry, is of the same text.
 */
export function createRunbookPageActivities({ runbooks }: { runbooks: RunbookVersions }) {
  const validated = new Map<string, Promise<string>>();

  const jsonOf = (name: string, version: number): Promise<string> => {
    const key = `${name}@${version}`;
    let json = validated.get(key);
    if (!json) {
      json = (async () => {
        const stored = await runbooks.get(name, version);
        if (!stored) throw failure('UnknownRunbook', `runbook ${name} version ${version} is not in the runbook store`);
        const checked = validateRunbook(stored.text);
        if (!checked.runbook) throw failure('RunbookMismatch', `runbook ${name} version ${version} no longer validates: ${checked.errors[0]?.message ?? 'invalid'}`);
        return JSON.stringify(checked.runbook);
      })();
      validated.set(key, json);
      json.catch(() => validated.delete(key));
      if (validated.size > KEPT_VERSIONS) validated.delete(validated.keys().next().value!);
    }
    return json;
  };

  return {
    async readRunbookPage({ name, version, page }: { name: string; version: number; page: number }): Promise<RunbookPage> {
      const json = await jsonOf(name, version);
      return { text: json.slice(page * RUNBOOK_PAGE_CHARS, (page + 1) * RUNBOOK_PAGE_CHARS), pages: Math.ceil(json.length / RUNBOOK_PAGE_CHARS) };
    },
  };
}

export type RunbookPageActivities = ReturnType<typeof createRunbookPageActivities>;
