'use strict';
/**
 * memview-probe.js: announce phases to memview from Node.js. One file, no dependencies.
 *
 *   const probe = require('./memview-probe');
 *   probe.phase('parse', () => parse(input));          // sync function
 *   await probe.phase('upload', async () => upload()); // or a promise-returning one
 *   probe.mark('page 500 done', { page: 500 });
 *   probe.phaseStart('load'); ...; probe.phaseEnd('load');
 *
 * Under `memview run` the environment has MEMVIEW_FD, an inherited descriptor; each call writes
 * one JSON line to it ({"event": "phase_start"|"phase_end"|"mark", "name", "t", "pid", "data"}).
 * Without MEMVIEW_FD every call is a no-op, so the probe can stay in production code.
 * Writes are synchronous (fs.writeSync) so a boundary is on the channel before the next line of
 * your code runs; memview drains the channel on its own thread.
 */
const fs = require('fs');

let fd = null;
let checkedPid = null;

function channel() {
  if (checkedPid === process.pid) return fd;
  checkedPid = process.pid;
  fd = null;
  const raw = process.env.MEMVIEW_FD || '';
  if (!/^\d+$/.test(raw)) return fd;
  const n = Number(raw);
  try {
    const st = fs.fstatSync(n);
    // only a socket or a pipe: a reused descriptor number must never get our lines
    if (st.isSocket() || st.isFIFO()) fd = n;
  } catch (e) {
    fd = null; // not inherited here
  }
  return fd;
}

function send(event, name, data) {
  const target = channel();
  if (target === null) return;
  const obj = { event, t: Date.now() / 1000, pid: process.pid };
  if (name !== undefined && name !== null) obj.name = String(name);
  if (data && Object.keys(data).length) obj.data = data;
  const buf = Buffer.from(JSON.stringify(obj) + '\n');
  let off = 0;
  try {
    while (off < buf.length) {
      try {
        off += fs.writeSync(target, buf, off, buf.length - off);
      } catch (e) {
        if (e.code !== 'EAGAIN') throw e;
      }
    }
  } catch (e) {
    fd = null; // memview went away: be a no-op from now on
  }
}

function enabled() { return channel() !== null; }
function mark(name, data) { send('mark', name, data); }
function phaseStart(name, data) { send('phase_start', name, data); }
function phaseEnd(name, data) { send('phase_end', name, data); }

/** Run fn inside phase `name`; returns fn's result (a promise ends the phase when it settles). */
function phase(name, fn, data) {
  phaseStart(name, data);
  let result;
  try {
    result = fn();
  } catch (e) {
    phaseEnd(name, { error: e && e.name ? e.name : 'Error' });
    throw e;
  }
  if (result && typeof result.then === 'function') {
    return result.then(
      (v) => { phaseEnd(name); return v; },
      (e) => { phaseEnd(name, { error: e && e.name ? e.name : 'Error' }); throw e; });
  }
  phaseEnd(name);
  return result;
}

module.exports = { enabled, mark, phase, phaseStart, phaseEnd };
