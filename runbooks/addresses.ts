/** IP address arithmetic for re-IP checks: validity, prefix ranges and subnet membership. */
import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

export function ipFamily(text: string): IpFamily | undefined {
  const family = isIP(text);
  return family === 4 || family === 6 ? family : undefined;
}

function ipv4ToBigInt(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigInt(text: string): bigint {
  let address = text;
  // An IPv4 tail (::ffff:10.0.0.1) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]);
    address = `${address.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailParts];
  return parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
}

export function toBigInt(text: string, family: IpFamily): bigint {
  return family === 4 ? ipv4ToBigInt(text) : ipv6ToBigInt(text);
}

export const maxPrefix = (family: IpFamily) => (family === 4 ? 32 : 128);

export function sameSubnet(a: string, b: string, family: IpFamily, prefix: number): boolean {
  const bits = BigInt(maxPrefix(family) - prefix);
  return toBigInt(a, family) >> bits === toBigInt(b, family) >> bits;
}

/** For IPv4 subnets with room for hosts, the all-zeros and all-ones host parts are not host addresses. */
export function isIpv4NetworkOrBroadcast(address: string, prefix: number): boolean {
  if (prefix >= 31) return false;
  const hostBits = BigInt(32 - prefix);
  const host = ipv4ToBigInt(address) & ((1n << hostBits) - 1n);
  return host === 0n || host === (1n << hostBits) - 1n;
}
