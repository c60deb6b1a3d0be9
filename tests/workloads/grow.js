// Retain Buffers from retainBuffers() for SECONDS (argv[2]); RSS climbs to ~100 MiB then drops.
// Buffers are few objects holding much memory, so a heap snapshot stays small (a few MB).
const keep = [];
function retainBuffers(n) {
  keep.push(Buffer.alloc(n, 1));
}
const seconds = +process.argv[2] || 3;
const timer = setInterval(() => {
  retainBuffers(4 << 20);
  if (keep.length > 24) keep.length = 0;
}, 20);
setTimeout(() => clearInterval(timer), seconds * 1000);
console.log("ready");
