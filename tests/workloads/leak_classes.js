// Keep LeakyRecord objects, 2000 every 20 ms, until argv[3] (a stop file) exists; also churn
// short-lived TempRecord objects that are never kept. Prints "ready" first.
// Usage: node leak_classes.js MAX_RECORDS STOP_FILE
const fs = require("fs");
class LeakyRecord {
  constructor(i) {
    this.id = i;
    this.payload = [i, i + 1, i + 2, i + 3];
  }
}
class TempRecord {
  constructor(i) {
    this.id = i;
  }
}
const max = +process.argv[2] || 200000;
const stopFile = process.argv[3];
const kept = [];
let churn = 0;
console.log("ready");
const timer = setInterval(() => {
  for (let i = 0; i < 2000 && kept.length < max; i++) kept.push(new LeakyRecord(kept.length));
  for (let i = 0; i < 2000; i++) churn += new TempRecord(i).id;
  if (stopFile && fs.existsSync(stopFile)) clearInterval(timer);
}, 20);
