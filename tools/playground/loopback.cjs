// Preloaded into the Agents Playground (node --require): its server calls listen(port) with no host, which
// binds every interface. Bind loopback instead, so the unauthenticated mocked connector is never reachable
// from another machine. Only listen() calls that name no host are changed.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  } else if (first && typeof first === "object" && !("fd" in first) && !first.path && !first.host) {
    args[0] = { ...first, host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
