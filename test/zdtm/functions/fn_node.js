// fn_node: a Node.js function server (libuv: threads, epoll, eventfd,
// pipes, timers). Speaks the zdtm protocol (--out FILE --pidfile FILE):
// serves POST /fn on 127.0.0.1 (port 0, written to ./port) answering
// {"sum_sq", "digest", "served"} for a JSON body {"n": N}, like fn_http.py;
// a 50 ms interval timer counts ticks, which must keep advancing after a
// restore (checked when requests are more than 150 ms apart). On SIGTERM it writes PASS (or FAIL) and exits.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const args = process.argv.slice(2);
const opt = (name) => args[args.indexOf(name) + 1];
const out = opt('--out'), pidfile = opt('--pidfile');
let served = 0, ticks = 0, lastTicks = -1, lastAt = 0;
const errors = [];

setInterval(() => { ticks++; }, 50);

const srv = http.createServer((req, res) => {
	let body = '';
	req.on('data', (d) => { body += d; });
	req.on('end', () => {
		try {
			const n = JSON.parse(body).n;
			let s = 0;
			for (let i = 0; i < n; i++) s += i * i;
			served++;
			// 150 ms without a tick of a 50 ms interval: the timer is dead
			if (ticks === lastTicks && Date.now() - lastAt > 150)
				errors.push('timer stopped');
			lastTicks = ticks;
			lastAt = Date.now();
			res.setHeader('Content-Type', 'application/json');
			res.end(JSON.stringify({sum_sq: s, digest: crypto.createHash('sha256').update(body).digest('hex'),
						served}));
		} catch (e) {
			errors.push(String(e));
			res.statusCode = 500;
			res.end();
		}
	});
});

process.on('SIGTERM', () => {
	fs.writeFileSync(out, errors.length ? 'FAIL: ' + errors.join('; ') + '\n' : 'PASS\n');
	process.exit(0);
});

srv.listen(0, '127.0.0.1', () => {
	fs.writeFileSync('port.tmp', String(srv.address().port));
	fs.renameSync('port.tmp', 'port');
	fs.writeFileSync(pidfile + '.tmp', String(process.pid));
	fs.renameSync(pidfile + '.tmp', pidfile);
});
