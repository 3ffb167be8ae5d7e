// The comparison's program in plain JavaScript, the reference: the browser's `WebSocket`,
// each reply checked against what was sent (as the Rust programs do; the messages and the
// byte comparison are in messages.js, as the Rust programs' are in common/), the next message
// sent from `onmessage`.

import { binary, pattern, same, text } from "./messages.js";

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("cannot connect to " + url));
  });
}
// Sends `count` messages, `window` at a time; resolves when every reply matched the message
// it answers.
function echo(ws, count, window, message, matches) {
  return new Promise((resolve, reject) => {
    const waiting = [];
    let received = 0;
    const send = () => {
      while (received + waiting.length < count && waiting.length < window) {
        waiting.push(message(received + waiting.length));
        ws.send(waiting[waiting.length - 1]);
      }
    };
    ws.onmessage = (event) => {
      if (!matches(event.data, waiting.shift())) return reject(new Error("wrong echo"));
      if (++received === count) return resolve();
      send();
    };
    send();
  });
}

export async function round_trips(url, count, size) {
  const ws = await open(url);
  await echo(ws, count, 1, (n) => text(n, size), (data, sent) => data === sent);
  ws.close();
}

export async function binary_round_trips(url, count, size) {
  return in_flight(url, count, size, 1);
}

export async function in_flight(url, count, size, window) {
  const ws = await open(url);
  const bytes = pattern(size);
  const matches = (data, sent) => data instanceof ArrayBuffer && same(new Uint8Array(data), sent);
  await echo(ws, count, window, (n) => binary(bytes, n), matches);
  ws.close();
}

export async function open_close(url, count) {
  for (let i = 0; i < count; i++) {
    const ws = await open(url);
    ws.close();
    await new Promise((resolve) => (ws.onclose = resolve));
  }
}
