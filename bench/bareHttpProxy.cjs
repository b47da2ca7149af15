// The floor of any Node HTTP proxy here (bench/endpoints.ts): each request forwarded with http.request over
// keep-alive sockets to TARGET_HOST:TARGET_PORT and the answer piped back; no token check, no journal, no
// headers added. Prints "listening PORT" once it listens on 127.0.0.1.
const http = require('node:http');
const [host, port] = [process.env.TARGET_HOST, Number(process.env.TARGET_PORT)];
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const server = http.createServer((req, res) => {
  const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers, agent }, (ures) => {
    res.writeHead(ures.statusCode, ures.headers);
    ures.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
