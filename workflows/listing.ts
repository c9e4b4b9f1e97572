/**
 * How many entries a report lists of anything that grows with the domain (a drill's resources
 * not removed, names left behind): a 10,000-VM operation's report must stay under Temporal's
 * 2 MiB limit on a workflow's result, and nobody reads 30,000 names in a report anyway.
 */
export const LISTED_AT_MOST = 100;

/** A list in a report: how many there are, and the first LISTED_AT_MOST of them. */
export interface Listing<T> {
  count: number;
  first: T[];
}

export function listingOf<T>(items: T[]): Listing<T> {
  return { count: items.length, first: items.slice(0, LISTED_AT_MOST) };
}

export function addToListing<T>(listing: Listing<T>, items: T[]): void {
  listing.count += items.length;
  listing.first.push(...items.slice(0, Math.max(0, LISTED_AT_MOST - listing.first.length)));
}

/** Names in a sentence (a summary, a step, a message), the first few and how many more: `a, b, c and 9,997 more`. */
export function someNames(names: string[], shown = 5): string {
  if (names.length <= shown) return names.join(', ');
  return `${names.slice(0, shown).join(', ')} and ${(names.length - shown).toLocaleString('en-US')} more`;
}
