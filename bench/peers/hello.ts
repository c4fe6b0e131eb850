// The ceiling: a bare Fastify route that parses the body like any Fastify app (JSON.parse for JSON, a buffer for
// binary) and answers a constant JSON body: HTTP and parsing, no model. What slogate adds on top is its overhead.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/hello', async () => ({ hello: 'world' }));
app.addContentTypeParser(
  'application/octet-stream',
  { parseAs: 'buffer', bodyLimit: 64 * 1024 * 1024 },
  (_req, body, done) => done(null, body),
);
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`ready: ${address}\n`);
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
