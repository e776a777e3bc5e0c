// The network part of one probe, run inside a pod's network namespace:
//   nsenter --target <pid> --net -- node dist/prober/netns-probe-main.js   (request on stdin)
// It reads one NetProbeRequest as JSON from stdin, runs it against the pod's own 127.0.0.1 and
// prints the outcome as one JSON line. The request comes on stdin rather than in argv so that
// header values (an Authorization token, say) never show in the process list. Builtins only, so
// Node starts it as quickly as it can.
import { runNetProbe, type NetProbeRequest } from './net-probe.js';

/** Reads all of stdin as text. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses the request, runs it and prints its outcome; a malformed request exits 2. */
async function main(): Promise<void> {
  let request: NetProbeRequest;
  try {
    request = JSON.parse(await readStdin()) as NetProbeRequest;
    if (typeof request !== 'object' || request === null || !['http', 'tcp', 'grpc'].includes(request.type)) throw new Error('unknown probe type');
  } catch (error) {
    process.stderr.write(`netns-probe: bad request: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
    return;
  }
  const outcome = await runNetProbe(request);
  // Exit once the line is out: a socket the server holds open must not keep this process alive.
  process.stdout.write(`${JSON.stringify(outcome)}\n`, () => process.exit(0));
}

await main();
