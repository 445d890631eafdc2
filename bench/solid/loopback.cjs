// Preloaded with `node --require ./loopback.cjs`: the Community Solid Server
// has no host option and listens on every interface, so make every TCP
// listen bind to 127.0.0.1 instead. With BENCH_EXIT_ON_STDIN_EOF set, the
// process also exits when its stdin closes, so a benchmark that dies
// without stopping it does not leave it running.
"use strict";
const net = require("node:net");

const LOOPBACK = "127.0.0.1";
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  const [first] = args;
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback])
    const rest = args.slice(1);
    if (typeof rest[0] === "string" || rest[0] === undefined || rest[0] === null) rest.shift();
    return listen.call(this, first, LOOPBACK, ...rest);
  }
  if (first && typeof first === "object" && !("path" in first) && !("handle" in first)
      && !("fd" in first) && !("_handle" in first)) {
    // listen(options[, callback])
    return listen.call(this, { ...first, host: LOOPBACK }, ...args.slice(1));
  }
  return listen.apply(this, args); // a pipe, a handle or an fd: not ours to change
};

if (process.env.BENCH_EXIT_ON_STDIN_EOF) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}
