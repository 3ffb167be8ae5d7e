// Node's `ws` with permessage-deflate: the deflate baseline of `cargo xtask bench` (scenario 7),
// configured as ws documents for servers (no context takeover either way, its default 1 KiB
// threshold and zlib level). Run as `node ws-echo.cjs PATH/TO/node_modules/ws`; prints
// `listening on ws://ADDR/` and echoes every message as it came.
'use strict';

const { WebSocketServer } = require(process.argv[2]);

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: 1 << 20,
  perMessageDeflate: {
    threshold: 1024,
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
  },
});

server.on('listening', () => {
  const { address, port } = server.address();
  console.log(`listening on ws://${address}:${port}/`);
});

server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
});
