// Three phases through resources/probe/memview-probe.js; each phase's own truth is the
// process's RSS right after it touched its last page. Usage: node phases3.js REPORT [A B C]
'use strict';
const fs = require('fs');
const path = require('path');
const probe = require(path.join(__dirname, '..', '..', 'resources', 'probe', 'memview-probe.js'));

const report = process.argv[2];
const sizes = process.argv.length > 5 ? process.argv.slice(3, 6).map(Number) : [40, 160, 90];
const holds = [300, 50, 300];

function sleep(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }
function rss() {
  const statm = fs.readFileSync('/proc/self/statm', 'utf8').split(' ');
  return Number(statm[1]) * 4096;
}

const truth = {};
sleep(100);
['a', 'b', 'c'].forEach((name, i) => {
  probe.phase(name, () => {
    let buf = Buffer.alloc(sizes[i] * 1024 * 1024, 1); // written: resident
    truth[name] = rss();
    sleep(holds[i]);
    buf = null;
  });
  // Buffer memory goes back to the OS only when V8 collects the object: collect between phases
  if (global.gc) global.gc();
  sleep(100);
});
fs.writeFileSync(report, JSON.stringify({ peaks: truth, enabled: probe.enabled() }));
