/**
 * glibc malloc settings for the product's Node processes, in their environment at start (glibc
 * reads them once, before any JavaScript runs).
 *
 * Buffers of 128 KiB and more (segments, base chunks, S3 bodies: megabytes each) are mmapped and
 * freed, but glibc raises its mmap threshold to the size of the largest block freed so far (up to
 * 32 MiB): after the first segment every later one comes from the malloc heap, whose freed holes
 * are neither reused well by the next sizes nor returned to the system. A rehydration's RSS then
 * grew with the domain although its buffers in flight did not (bench/results/README.md: at 8 GiB,
 * 605 MiB RSS with 204 MiB of buffers). Setting the threshold fixes it at its default and turns
 * that adjustment off, so a freed buffer goes back to the system at once.
 *
 * For the site workers only, which rehydrate: every buffer of 128 KiB and more is then mapped and
 * unmapped, and its pages faulted in afresh. Interleaved runs of the failover end-to-end tests with
 * every product process under it took 6-20% more CPU (248.8 and 250.0 CPU s without, 265.1 and
 * 298.8 with: system time 7-10 s more, user time 9-40 s more); the other processes gain nothing
 * for it.
 */
export const MALLOC_SETTINGS: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: String(128 * 1024) };

/** `env` with the malloc settings, unless it sets its own. */
export function withMallocSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...MALLOC_SETTINGS, ...env };
}

/** The settings this process was started without (a site worker started by hand, say). */
export function missingMallocSettings(env: NodeJS.ProcessEnv = process.env): string[] {
  return process.platform === 'linux' ? Object.keys(MALLOC_SETTINGS).filter((name) => env[name] === undefined) : [];
}
