/**
 * `GET /openapi.json` and its readable page `GET /docs` (Swagger UI from the swagger-ui-dist
 * package, served from this process: the page loads nothing from elsewhere), both without a token,
 * like `/healthz`.
 */
import path from 'node:path';
import express, { type Router } from 'express';
import { version } from '../../package.json';
import { apiRoutes } from './api-routes';
import { openApiDocument } from './document';
import { routeDocs } from './route-docs';

export const DOCS_ASSETS = '/docs/assets';
const SWAGGER_UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));

const INFO = {
  title: 'DR orchestrator API',
  version,
  description:
    'Runbooks, protected domains and the operations on them (failover, failback, drills, restores). Every route but /healthz, /openapi.json and /docs needs `Authorization: Bearer <token>`; `x-required-role` names the least role a token must have. Errors are RFC 9457 problem details (application/problem+json).',
};

// validatorUrl null: Swagger UI would otherwise send the document to an online validator.
const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>${INFO.title}</title>
  <link rel="stylesheet" href="${DOCS_ASSETS}/swagger-ui.css">
  <link rel="icon" type="image/png" href="${DOCS_ASSETS}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${DOCS_ASSETS}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null });
  </script>
</body>
</html>
`;

/** The document of what the app serves now. */
export const appDocument = (app: express.Express) => openApiDocument(apiRoutes(app).routes, INFO);

/** Reads the app's routes when first asked: every router is mounted by then. */
export function openApiRouter(app: express.Express): Router {
  const router = express.Router();
  const doc = routeDocs(router);
  let document: ReturnType<typeof appDocument> | undefined;

  doc.get('/openapi.json', { summary: 'This OpenAPI 3.1 document', responses: { 200: { description: 'the document', content: { 'application/json': null } } } });
  router.get('/openapi.json', (_req, res) => {
    document ??= appDocument(app);
    res.json(document);
  });

  doc.get('/docs', { summary: 'This document as a readable page (Swagger UI)', responses: { 200: { description: 'the page; its scripts and styles are under /docs/assets', content: { 'text/html': null } } } });
  router.get('/docs', (_req, res) => {
    res.type('html').send(PAGE);
  });
  router.use(DOCS_ASSETS, express.static(SWAGGER_UI_DIR, { index: false, fallthrough: false }));

  return router;
}
