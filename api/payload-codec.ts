import type { Payload } from '@temporalio/common';
import express, { type Router } from 'express';
import { z } from 'zod';
import { InflatesTooLarge, MAX_INFLATED_BYTES, PayloadCompression } from '../common/payload-compression';
import { routeDocs } from './openapi/route-docs';
import { badRequest, parseBody, ProblemError } from './problem';

/** A payload as the Temporal Web UI and CLI send it to a remote codec: protobuf's JSON, bytes in base64. */
const JsonPayload = z.object({
  metadata: z.record(z.string(), z.base64()).nullish(),
  data: z.base64().nullish(),
});
type JsonPayload = z.infer<typeof JsonPayload>;

const PayloadsBody = z.object({ payloads: z.array(JsonPayload).max(10_000) }).meta({ title: 'Payloads' });

const fromJson = ({ metadata, data }: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')])),
  ...(data ? { data: Buffer.from(data, 'base64') } : {}),
});

const toJson = ({ metadata, data }: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value ?? []).toString('base64')])),
  ...(data ? { data: Buffer.from(data).toString('base64') } : {}),
});

/**
 * The remote codec the Temporal Web UI (`--ui-codec-endpoint`, or its Data Encoder setting) and
 * `temporal workflow show --codec-endpoint` call to show the payloads workers store compressed
 * (`common/payload-compression.ts`). Open, like the health check: it only turns the bytes the
 * caller sends into other bytes, reads nothing stored, and the UI calls it from the browser
 * without the API's tokens (cross-origin, hence the CORS headers). What one request may inflate to is bounded.
 */
export function payloadCodecRouter(): Router {
  const router = express.Router();
  const doc = routeDocs(router);
  // A page of history's payloads; one compressed payload is at most Temporal's 2 MB, in base64.
  const json = express.json({ limit: '16mb' });
  const compression = new PayloadCompression();

  router.use('/codec', (req, res, next) => {
    res.set({ 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'content-type, x-namespace, authorization', 'Access-Control-Max-Age': '600' });
    if (req.method === 'OPTIONS') res.status(204).end();
    else next();
  });

  doc.post('/codec/decode', {
    summary: 'Decode payloads for the Temporal Web UI and CLI (a remote codec): compressed ones inflated, others as they are',
    body: PayloadsBody,
    responses: { 200: { description: 'the payloads decoded, in the order sent', content: { 'application/json': PayloadsBody } } },
    problems: [400, 413, 415],
  });
  router.post('/codec/decode', json, (req, res) => {
    const { payloads } = parseBody(PayloadsBody, req);
    let budget = MAX_INFLATED_BYTES;
    const decoded = payloads.map((p, index) => {
      const payload = decodeWithin(budget, fromJson(p), index);
      budget -= payloadBytes(payload);
      return toJson(payload);
    });
    res.json({ payloads: decoded });
  });

  doc.post('/codec/encode', {
    summary: 'Encode payloads as workers do (a remote codec): large ones compressed',
    body: PayloadsBody,
    responses: { 200: { description: 'the payloads encoded, in the order sent', content: { 'application/json': PayloadsBody } } },
    problems: [400, 413, 415],
  });
  router.post('/codec/encode', json, async (req, res) => {
    const { payloads } = parseBody(PayloadsBody, req);
    res.json({ payloads: (await compression.encode(payloads.map(fromJson))).map(toJson) });
  });
  return router;
}

/** One payload decoded, inflating at most what is left of the request's budget. */
function decodeWithin(budget: number, payload: Payload, index: number): Payload {
  try {
    if (budget <= 0) throw new InflatesTooLarge(MAX_INFLATED_BYTES);
    return new PayloadCompression(undefined, budget).decodeOne(payload);
  } catch (error) {
    if (error instanceof InflatesTooLarge) {
      throw new ProblemError({ title: 'Content too large', status: 413, detail: `the payloads inflate to more than ${MAX_INFLATED_BYTES} bytes: send fewer at once` });
    }
    throw badRequest(`payload ${index} cannot be decoded: ${(error as Error).message}`, { errors: [{ path: `payloads.${index}`, message: (error as Error).message }] });
  }
}

const payloadBytes = (p: Payload) => (p.data?.length ?? 0) + Object.values(p.metadata ?? {}).reduce((sum, v) => sum + (v?.length ?? 0), 0);
