// Browser tests of the people's pages: the real ldisd and mosquitto on loopback, SQLite on
// disk, Debian's Chromium driven by playwright-core, accessibility checked by axe-core.
// Screenshots of every page are kept in $LDIS_E2E_ARTIFACTS (default build/e2e-artifacts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const build = process.env.LDIS_BUILD_DIR || path.join(root, 'build');
const artifacts = process.env.LDIS_E2E_ARTIFACTS || path.join(build, 'e2e-artifacts');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ldis-e2e-'));
const children = [];
let browser, base, tokens = {}, reference, alertRef, mqtt, medwayKey, ackLink;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function until(probe, what, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function start(command, args, log) {
  const out = fs.openSync(log, 'a');
  const child = spawn(command, args, { stdio: ['ignore', out, out] });
  children.push(child);
  return child;
}

// One part of an email ldisd wrote (each part is base64 in UTF-8), decoded.
function emailPart(eml, type) {
  const encoded = eml.split(`Content-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n`)[1]
    .split('--')[0].replace(/\s+/g, '');
  return Buffer.from(encoded, 'base64').toString('utf8');
}

async function shot(page, name) {
  fs.mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

// No serious or critical WCAG 2.2 A/AA violation on the page as it is now.
async function accessible(page, name) {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'])
    .analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(', ')})`), [],
    `${name} has accessibility violations`);
}

// Fills the report form as a clinician would: each field by its id; the radios (authority,
// evidence) by their value.
async function fillReport(page, fields) {
  for (const [id, value] of Object.entries(fields)) {
    if (id === 'authority' || id === 'evidence') await page.check(`input[name="${id}"][value="${value}"]`);
    else if (await page.$eval(`#${id}`, (e) => e.tagName === 'SELECT')) await page.selectOption(`#${id}`, value);
    else await page.fill(`#${id}`, value);
  }
}

async function signIn(page, role, next = '/') {
  if (next === '/report') await page.goto(`${base}/login?next=/report`);  // open to all
  else await page.goto(`${base}${next}`);
  assert.match(page.url(), /\/login/);
  await page.fill('#key', tokens[role]);
  await page.click('button:has-text("Sign in")');
}

before(async () => {
  const mqttPort = await freePort();
  const httpPort = await freePort();
  base = `http://127.0.0.1:${httpPort}`;
  fs.writeFileSync(path.join(work, 'mosquitto.conf'),
    `listener ${mqttPort} 127.0.0.1\nallow_anonymous true\n${process.getuid() === 0 ? 'user root\n' : ''}`);
  start('/usr/sbin/mosquitto', ['-c', path.join(work, 'mosquitto.conf')], path.join(work, 'mosquitto.log'));
  const db = path.join(work, 'ldis.db');
  // The shipped configuration, with its paths made absolute and a peer, Medway, whose
  // versions (signed here with its key) this instance puts before its coordinators.
  mqtt = mqttPort;
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path.join(work, 'self.key')]);
  fs.chmodSync(path.join(work, 'self.key'), 0o600);
  medwayKey = crypto.generateKeyPairSync('ed25519');
  fs.writeFileSync(path.join(work, 'medway.pub'), medwayKey.publicKey.export({ type: 'spki', format: 'pem' }));
  const shipped = fs.readFileSync(path.join(root, 'config/ldisd.toml'), 'utf8');
  fs.writeFileSync(path.join(work, 'ldisd.toml'), `${shipped.slice(0, shipped.indexOf('[paths]'))}[paths]
templates = "${path.join(root, 'templates')}"
assets = "${path.join(root, 'node_modules/govuk-frontend/dist/govuk')}"
partners = "${path.join(root, 'config/partners.toml')}"
rules = "${path.join(root, 'config/rules.toml')}"
substances = "${path.join(root, 'config/substances.toml')}"
areas = "${path.join(root, 'config/areas.toml')}"
schema = "${path.join(root, 'config/schema/report.schema.json')}"

[federation]
instance = "kent"
key_file = "${path.join(work, 'self.key')}"

[federation.policy]
red = "review"
amber = "review"

[[federation.peers]]
instance = "medway"
name = "Medway LDIS"
public_key_file = "${path.join(work, 'medway.pub')}"
`);
  start(path.join(build, 'app/ldisd'), [
    '--config', path.join(work, 'ldisd.toml'),
    '--set', `mqtt.uri=tcp://127.0.0.1:${mqttPort}`, '--set', `store.path=${db}`,
    '--set', `http.listen=127.0.0.1:${httpPort}`, '--set', `http.public_url=${base}`,
    '--set', 'http.metrics_listen=127.0.0.1:0',
    '--set', `email.smtp_url=maildir:${path.join(work, 'mail')}`, '--set', 'dispatch.channels=email,mqtt',
  ], path.join(work, 'ldisd.log'));
  await until(() => fs.existsSync(path.join(work, 'ldisd.log')) &&
    fs.readFileSync(path.join(work, 'ldisd.log'), 'utf8').includes('http listening'), 'ldisd to listen');
  for (const role of ['submitter', 'coordinator', 'admin']) {
    tokens[role] = execFileSync(path.join(build, 'app/ldisctl'),
      ['tokens', 'create', '--db', db, '--role', role, '--name', `${role}@example.org`],
      { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  }
  browser = await chromium.launch({
    executablePath: process.env.LDIS_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const child of children.reverse()) child.kill('SIGTERM');
  if (process.env.LDIS_E2E_KEEP) console.log(`work folder kept: ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
});

test('the sign-in page is accessible and refuses a wrong key', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await shot(page, '01-login');
  await accessible(page, 'login');
  await page.fill('#key', 'ldis_not_a_real_key');
  await page.click('button:has-text("Sign in")');
  await page.waitForSelector('.govuk-error-summary');
  assert.match(await page.textContent('.govuk-error-summary'), /not known/);
  await accessible(page, 'login with an error');
  await context.close();
});

test('a clinician submits the form with errors, corrects them and gets a receipt', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'submitter', '/report');
  await page.waitForURL(/\/report$/);
  await shot(page, '02-report-form');
  await accessible(page, 'report form');
  await page.click('button:has-text("Send report")');
  await page.waitForSelector('.govuk-error-summary');
  const summary = await page.textContent('.govuk-error-summary');
  for (const words of ['Select where you work', 'Enter the name of your organisation',
    'Select the district', 'Enter what the drug is', 'Select how sure you are']) {
    assert.ok(summary.includes(words), `error summary lacks "${words}": ${summary}`);
  }
  assert.equal(await page.getAttribute('#organisation', 'aria-describedby'), 'organisation-error');
  assert.match(await page.title(), /^Error: /);
  await shot(page, '03-report-errors');
  await accessible(page, 'report form with errors');
  // The error summary's link takes you to the field.
  await page.click('.govuk-error-summary a[href="#organisation"]');
  await page.fill('#organisation', 'Medway NHS Foundation Trust');
  await page.selectOption('#source_type', 'hospital');
  await page.check('#authority');  // Medway
  await page.selectOption('#district', 'Medway');
  await page.fill('#substance', 'heroin');
  await page.fill('#sold_as', 'brown');
  await page.selectOption('#confirmed_by', 'lab');
  await page.selectOption('#strength', 'very_high');
  await page.fill('#cases', '3');
  await page.fill('#hospitalisations', '2');
  await page.fill('#naloxone_doses', '3');
  await page.fill('#symptoms', 'pinpoint pupils\nslow breathing');
  await page.check('input[name="evidence"][value="professional"]');
  await page.click('button:has-text("Send report")');
  await page.waitForSelector('.govuk-panel--confirmation');
  reference = (await page.textContent('#reference')).trim();
  assert.match(reference, /^KM-R\d{6}$/);
  assert.match(await page.textContent('#level'), /Drug Warning \(amber\)/);
  alertRef = (await page.textContent('#alert')).trim();
  assert.match(alertRef, /^KM-\d{4}-\d{4}$/);
  await shot(page, '04-receipt');
  await accessible(page, 'receipt');
  await context.close();
});

test('anyone can report without a key, and the receipt says a person reads it first', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/report`);
  assert.match(page.url(), /\/report$/);
  await accessible(page, 'open report form');
  await fillReport(page, {
    source_type: 'hospital', organisation: 'Darent Valley Hospital', authority: 'Kent',
    district: 'Dartford', substance: 'heroin', cases: '1', deaths: '1', evidence: 'professional',
  });
  await page.click('button:has-text("Send report")');
  await page.waitForSelector('.govuk-panel--confirmation');
  assert.match(await page.textContent('main'), /wait for a person/);
  await shot(page, '04b-open-receipt');
  await accessible(page, 'open receipt');
  await context.close();
});

test('a coordinator signs in, approves the amber draft and sees deliveries appear', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator');
  await page.waitForSelector('h1:has-text("LDIS dashboard")');
  await shot(page, '05-dashboard');
  await accessible(page, 'dashboard');
  await page.click(`button:has-text("Approve ${alertRef}")`);
  await page.waitForURL(new RegExp(`/alerts/${alertRef}$`));
  assert.match(await page.textContent('#status'), /issued/);
  await until(async () => {
    await page.reload();
    const rows = await page.$$eval('tr.delivery-row', (trs) => trs.map((tr) => tr.textContent));
    return rows.some((r) => r.includes('alert') && r.includes('delivered'));
  }, 'deliveries to appear');
  await shot(page, '06-alert-record');
  await accessible(page, 'alert record');
  // The filters of the history table.
  await page.goto(`${base}/?level=amber&status=issued`);
  assert.match(await page.textContent('table[aria-labelledby="history-heading"] caption'), /^1 alert\(s\)/);
  await context.close();
});

test('a partner acknowledges through the link and the dashboard count moves', async () => {
  const mail = path.join(work, 'mail', 'new');
  const file = await until(() => fs.readdirSync(mail).find((f) => f.includes(`${alertRef}-v2-alert`)),
    'an email of the approved alert');
  const eml = fs.readFileSync(path.join(mail, file), 'utf8');
  const link = emailPart(eml, 'text/plain').match(/http:\/\/127\.0\.0\.1:\d+\/ack\/\S+/)[0];
  ackLink = link;
  const partnerContext = await browser.newContext();
  const partner = await partnerContext.newPage();
  await partner.goto(link);
  await shot(partner, '07-ack-confirm');
  await accessible(partner, 'acknowledgement page');
  await partner.click('button:has-text("Acknowledge")');
  await partner.waitForSelector('h1:has-text("Thank you: acknowledged")');
  await shot(partner, '08-ack-done');
  await partnerContext.close();

  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator');
  const progress = await page.textContent(`[data-ack="${alertRef}"]`);
  assert.match(progress, /^1 of \d+ partners acknowledged$/);
  await shot(page, '09-dashboard-acknowledged');
  await context.close();
});

test('the partner comes back: it has seen this too, reports it, then says what it did', async () => {
  const partnerContext = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true });
  const partner = await partnerContext.newPage();
  await partner.goto(ackLink);
  await partner.waitForSelector('h1:has-text("Already acknowledged")');
  assert.match(await partner.textContent('main'), /What you told us: Received/);
  await partner.check('#answer-seen_too');
  await accessible(partner, 'acknowledgement page with answers');
  await shot(partner, '08b-ack-answers-phone');
  await partner.click('button:has-text("Update what we did")');
  await partner.waitForSelector('h1:has-text("Thank you: acknowledged")');
  assert.match(await partner.textContent('main'), /We have seen this too/);
  // The report form, filled in from the alert: its substance and area, and its reference.
  await partner.click('a:has-text("Report what you have seen")');
  await partner.waitForSelector('#related-alert');
  assert.match(await partner.textContent('#related-alert'), new RegExp(alertRef));
  assert.notEqual(await partner.inputValue('#substance'), '');
  assert.notEqual(await partner.inputValue('#district'), '');
  await accessible(partner, 'report form from an alert');
  await partner.selectOption('#source_type', 'treatment');
  await partner.fill('#organisation', 'Forward Trust Medway');
  await partner.fill('#cases', '1');
  await partner.check('input[name="evidence"][value="professional"]');
  await partner.click('button:has-text("Send report")');
  await partner.waitForSelector('.govuk-panel--confirmation');
  // Later: what they did, with a note that names someone; the name is not kept.
  await partner.goto(ackLink);
  await partner.check('#answer-actions');
  await partner.fill('#note', 'Briefed the night team and outreach; told Darren McAllister on 07700 900123.');
  await partner.click('button:has-text("Update what we did")');
  await partner.waitForSelector('h1:has-text("Thank you: acknowledged")');
  assert.match(await partner.textContent('main'), /Actions taken/);
  await partnerContext.close();

  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator', `/alerts/${alertRef}`);
  await page.waitForSelector('#answers');
  const answers = await page.textContent('#answers');
  assert.match(answers, /Actions taken/);
  assert.match(answers, /Briefed the night team and outreach/);
  assert.doesNotMatch(answers, /07700 900123|McAllister/);
  await accessible(page, 'alert record with partners\' answers');
  await shot(page, '09b-alert-answers');
  // The partner's report answers this alert: its document names it.
  const record = await (await fetch(`${base}/api/v1/alerts/${alertRef}`, {
    headers: { Authorization: `Bearer ${tokens.coordinator}` } })).json();
  const acks = record.acknowledgements.filter((a) => a.answer === 'actions');
  assert.equal(acks.length, 1);
  assert.ok(!acks[0].note.includes('900123'));
  await context.close();
});

test('a coordinator writes the wording, is shown a name it holds, and edits it out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator');
  await page.goto(`${base}/alerts/${alertRef}`);
  // What the reporter wrote, through the scrubber, is there to read.
  assert.match(await page.textContent('main'), /What reporters wrote/);
  await page.fill('#wording-what', 'Brown powder in small bags, sold by Darren McAllister at the station.');
  await page.click('button:has-text("Issue an update with this wording")');
  await page.waitForSelector('#wording-findings');
  assert.match(await page.textContent('#wording-findings'), /1 name/);
  await shot(page, '10-wording-flagged');
  await accessible(page, 'alert record with a flagged wording');
  // Nothing was sent: the text is still in the form, to edit.
  assert.match(await page.inputValue('#wording-what'), /McAllister/);
  await page.fill('#wording-what', 'Brown powder in small bags, sold near the station.');
  await page.click('button:has-text("Issue an update with this wording")');
  await page.waitForURL(new RegExp(`/alerts/${alertRef}$`));
  assert.match(await page.textContent('main'), /Brown powder in small bags, sold near the station\./);
  assert.doesNotMatch(await page.textContent('main'), /Darren/);
  await shot(page, '11-wording-sent');
  await context.close();
});

test('the dashboard draws the trends and the map with the numbers the database holds, and the quarterly report prints', async () => {
  const db = path.join(work, 'ldis.db');
  // Counted here, with SQL of the test's own: real reports by district, live alerts' highest
  // level by district.
  const sql = (q) => execFileSync('sqlite3', ['-separator', '|', db, q]).toString().trim().split('\n')
    .filter((l) => l).map((l) => l.split('|'));
  const reports = Object.fromEntries(sql("SELECT district, count(*) FROM reports WHERE drill = '' GROUP BY district")
    .map(([d, n]) => [d, Number(n)]));
  const rank = { green: 1, amber: 2, red: 3 };
  const live = {};
  for (const [d, level] of sql("SELECT s.district, a.level FROM alerts a JOIN signals s ON s.id = a.signal_id WHERE s.drill = '' AND a.status IN ('issued', 'updated')")) {
    live[d] = live[d] || { level: 'none', count: 0 };
    live[d].count += 1;
    if ((rank[level] || 0) > (rank[live[d].level] || 0)) live[d].level = level;
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await signIn(page, 'coordinator');
  await page.waitForSelector('#district-map svg');
  const tiles = await page.$$eval('#district-map g[data-district]', (gs) => gs.map((g) => ({
    district: g.getAttribute('data-district'), level: g.getAttribute('data-level'),
    count: Number(g.querySelector('text:last-of-type').textContent) })));
  assert.equal(tiles.length, 13);
  for (const t of tiles) {
    const want = live[t.district] || { level: 'none', count: 0 };
    assert.equal(t.level, want.level, `${t.district}'s colour`);
    assert.equal(t.count, want.count, `${t.district}'s live alerts`);
  }
  const drawn = await page.$$eval('#chart-district rect[data-category]', (rs) => rs.map((r) => [
    r.getAttribute('data-category'), Number(r.getAttribute('data-count'))]));
  const byDistrict = {};
  for (const [d, n] of drawn) byDistrict[d] = (byDistrict[d] || 0) + n;
  assert.deepEqual(byDistrict, reports);
  // A bar leads to the history of its week and district.
  const href = await page.getAttribute('#chart-district a', 'href');
  assert.match(href, /^\/\?since=\d{4}-\d{2}-\d{2}&until=\d{4}-\d{2}-\d{2}&district=/);
  await accessible(page, 'dashboard with trends and map');
  await shot(page, '20-dashboard-trends');
  await page.click('#district-map a');
  await page.waitForURL(/district=/);
  assert.match(page.url(), /#history$/);

  // The quarterly report: tables and charts, on A4; its CSV counts what the database holds.
  await page.goto(`${base}/`);
  await page.click('a:has-text("The quarterly report")');
  await page.waitForSelector('h1:has-text("quarterly report")');
  await accessible(page, 'quarterly report');
  await shot(page, '21-quarterly-report');
  await page.emulateMedia({ media: 'print' });
  await page.pdf({ path: path.join(artifacts, '21-quarterly-report.pdf'), format: 'A4' });
  const quarter = new URL(page.url()).searchParams.get('quarter');
  const csv = await (await page.request.get(`${base}/reports/quarterly?quarter=${quarter}&format=csv`)).text();
  const since = Date.parse(`${quarter.slice(0, 4)}-${String((Number(quarter[6]) - 1) * 3 + 1).padStart(2, '0')}-01T00:00:00Z`);
  for (const [d, n] of sql(`SELECT district, count(*) FROM reports WHERE drill = '' AND received_at_ms >= ${since} GROUP BY district`)) {
    const said = Number(n) < 3 ? 'fewer than 3' : n;
    assert.ok(csv.includes(`reports-by-district,${quarter},${d},${said}\r\n`), `${d}: ${said} in\n${csv}`);
  }
  assert.equal((await page.request.get(`${base}/reports/quarterly?quarter=2026-Q9`)).status(), 400);
  await context.close();
});

test('a coordinator makes an alert public, and anyone reads it on a phone and checks it is real', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator');
  await page.goto(`${base}/alerts/${alertRef}`);
  await page.fill('#wording-advice', 'Do not use alone. Test a small amount first. Carry naloxone: any pharmacy can tell you where to get it.');
  await page.check('#audience-public');
  await accessible(page, 'alert record with the audience chosen');
  await page.click('button:has-text("Issue an update with this wording")');
  await page.waitForURL(new RegExp(`/alerts/${alertRef}$`));
  assert.match(await page.textContent('#audience'), /public/);
  await context.close();

  // Anyone, on a phone, without signing in.
  const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true });
  const reader = await phone.newPage();
  await reader.goto(`${base}/public/alerts`);
  assert.doesNotMatch(reader.url(), /login/);
  const listed = await reader.textContent('#public-alerts');
  assert.match(listed, new RegExp(alertRef));
  assert.match(listed, /Test a small amount first/);
  // The page fits the phone: nothing scrolls sideways.
  assert.ok(await reader.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1));
  await accessible(reader, 'the public alerts page');
  await shot(reader, '16-public-alerts-phone');
  await reader.click(`a[href="/public/alerts/${alertRef}"]`);
  await reader.waitForURL(new RegExp(`/public/alerts/${alertRef}$`));
  assert.match(await reader.textContent('#public-advice'), /Carry naloxone/);
  assert.doesNotMatch(await reader.textContent('main'), /Gillingham|ED nurse|affected/);
  await accessible(reader, 'a public alert');
  await shot(reader, '17-public-alert-phone');
  // "Is this alert real?": a genuine reference, and one that is not.
  await reader.goto(`${base}/public/alerts#check`);
  await reader.fill('#reference', alertRef.toLowerCase());
  await reader.click('button:has-text("Check")');
  assert.match(await reader.textContent('#check-result'), new RegExp(`${alertRef} is a genuine alert`));
  await accessible(reader, 'a reference checked');
  await reader.fill('#reference', 'KM-1999-0001');
  await reader.click('button:has-text("Check")');
  assert.match(await reader.textContent('#check-result'), /We have not issued an alert/);
  await reader.fill('#reference', 'not a reference');
  await reader.click('button:has-text("Check")');
  assert.match(await reader.textContent('.govuk-error-summary'), /like KM-2026-0007/);
  await accessible(reader, 'a reference refused');
  await shot(reader, '18-public-check-phone');
  await phone.close();
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const wide = await desktop.newPage();
  await wide.goto(`${base}/public/alerts`);
  await shot(wide, '19-public-alerts-desktop');
  await desktop.close();
});

test('a coordinator sets the level by hand with a reason, and gives it back to the rules', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator');
  await page.goto(`${base}/alerts/${alertRef}`);
  await page.click('summary:has-text("Set the level by hand")');
  await page.selectOption('#override-level', 'red');
  // Too short a reason is refused, and nothing changes.
  await page.fill('#override-reason', 'bad batch');
  await page.click('button:has-text("Set this level")');
  assert.match(await page.textContent('.govuk-error-summary'), /10 to 500 characters/);
  await page.click('summary:has-text("Set the level by hand")');
  await page.selectOption('#override-level', 'red');
  await page.fill('#override-reason', 'The DRD panel has two suspected deaths from this batch, not yet reported');
  await page.click('button:has-text("Set this level")');
  await page.waitForURL(new RegExp(`/alerts/${alertRef}$`));
  assert.match(await page.textContent('#override'), /set by hand by coordinator@example\.org/);
  assert.match(await page.textContent('#override'), /two suspected deaths/);
  assert.match(await page.textContent('#rules-now'), /The rules would now give amber\./);
  assert.match(await page.textContent('.govuk-tag'), /red/);
  await shot(page, '12-level-set-by-hand');
  await accessible(page, 'alert record with the level set by hand');
  await page.fill('#override-reason', 'The panel found the deaths were from another product');
  await page.click('button:has-text("Give the level back to the rules")');
  await page.waitForURL(new RegExp(`/alerts/${alertRef}$`));
  assert.equal(await page.$('#override'), null);
  assert.match(await page.textContent('.govuk-tag'), /amber/);
  await context.close();
});

test('an admin replays proposed grading rules from the dashboard and is warned of a lowered red', async () => {
  const rules = fs.readFileSync(path.join(root, 'config', 'rules.toml'), 'utf8');
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator');
  await page.goto(`${base}/grading`);
  assert.match(await page.textContent('#forbidden'), /Only an administrator/);
  await context.close();

  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await signIn(admin, 'admin');
  await admin.click('#grading-link');
  await admin.waitForURL(/\/grading$/);
  await accessible(admin, 'grading replay form');
  // The shipped rules change nothing.
  await admin.fill('#rules', rules);
  await admin.click('button:has-text("Replay")');
  assert.match(await admin.textContent('#summary'), /^\d+ signals, 0 would change$/);
  // Rules that make everything green would bring down the red of the open-form death.
  const greenOnly = '[[rule]]\nid = "only-green"\nlevel = "green"\nreason = "Everything is information."\nwhen = ["reports >= 1"]\n';
  await admin.fill('#rules', greenOnly);
  await admin.click('button:has-text("Replay")');
  assert.match(await admin.textContent('#summary'), /would change$/);
  assert.ok((await admin.$$('tr.change-row')).length >= 1);
  await shot(admin, '13-grading-replay');
  await accessible(admin, 'grading replay result');
  // A rules file with a mistake is named, not run.
  await admin.fill('#rules', '[[rule]]\nid = "x"\nlevel = "crimson"\n');
  await admin.click('button:has-text("Replay")');
  assert.match(await admin.textContent('.govuk-error-summary'), /the proposed rules:/);
  await adminContext.close();
});

// Issue 16 §1: a version Medway's LDIS signed, as the bridge would deliver it.
function offerFromMedway(cap, sequence) {
  const signed = Buffer.from(`ldis-federation/1\nmedway\n${sequence}\n${cap}`, 'utf8');
  const signature = crypto.sign(null, signed, medwayKey.privateKey).toString('base64url');
  execFileSync('mosquitto_pub', ['-p', String(mqtt), '-V', 'mqttv5', '-q', '1',
    '-t', 'ldis/v1/federation/medway/alerts', '-s',
    '-D', 'publish', 'user-property', 'ldis-instance', 'medway',
    '-D', 'publish', 'user-property', 'ldis-sequence', String(sequence),
    '-D', 'publish', 'user-property', 'ldis-signature', signature], { input: cap });
}

test('a coordinator adopts one alert from another LDIS and declines another', async () => {
  // Two of Medway's alerts: this instance's own CAP of its alert, renamed as Medway's.
  const own = await (await fetch(`${base}/api/v1/alerts/${alertRef}/cap`,
    { headers: { Authorization: `Bearer ${tokens.coordinator}` } })).text();
  assert.match(own, /LDIS-reference/);
  const cap = (ref) => own.replaceAll(alertRef, ref).replace(/-v\d+</g, '-v1<')
    .replace(/<value>\d+<\/value><\/parameter>/, '<value>1</value></parameter>')
    .replace(/<msgType>\w+<\/msgType>/, '<msgType>Alert</msgType>').replace(/<references>[^<]*<\/references>\n?/, '');
  offerFromMedway(cap('MW-2026-0041'), 1000);
  offerFromMedway(cap('MW-2026-0042'), 1001);
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator');
  await until(async () => {
    await page.goto(`${base}/`);
    return (await page.$$('#federated-waiting tbody tr')).length === 2;
  }, 'two alerts from Medway waiting');
  await shot(page, '14-federated-waiting');
  await accessible(page, 'dashboard with alerts from another LDIS');
  await page.click('button:has-text("Adopt MW-2026-0041 v1")');
  await page.waitForURL(/done=adopted/);
  assert.match(await page.textContent('.govuk-notification-banner__heading'), /adopted/);
  await page.click('button:has-text("Decline MW-2026-0042 v1")');
  await page.waitForURL(/done=declined/);
  assert.match(await page.textContent('.govuk-notification-banner__heading'), /declined/);
  const decided = await page.$$eval('#federated tbody tr', (trs) => trs.map((tr) => tr.textContent));
  assert.ok(decided.some((r) => r.includes('MW-2026-0041') && r.includes('adopted')), decided.join('|'));
  assert.ok(decided.some((r) => r.includes('MW-2026-0042') && r.includes('declined')), decided.join('|'));
  assert.equal((await page.$$('#federated-waiting tbody tr')).length, 0);
  await shot(page, '15-federated-decided');
  await accessible(page, 'dashboard after deciding');
  // The adopted one went to this instance's partners, marked as Medway's.
  const mail = path.join(work, 'mail', 'new');
  await until(() => fs.readdirSync(mail).some((f) => f.includes('MW-2026-0041')), 'an email of the adopted alert');
  assert.ok(!fs.readdirSync(mail).some((f) => f.includes('MW-2026-0042')), 'the declined alert was sent');
  await context.close();
});

// Issue 17 §6: the red alert's email as a partner reads it, in Chromium at a phone's width and
// a desk's, light and dark: the level's colour with what and where, then the action and the
// Acknowledge button within the first screen, the sections, and "Stop these messages" last.
test('a partner reads a red alert email on a phone and at a desk, light and dark', async () => {
  const report = {
    schema: 'ldis.report/1', id: crypto.randomUUID(), submitted_at: new Date().toISOString(),
    source: { type: 'hospital', organisation: 'Medway NHS Foundation Trust' },
    area: { authority: 'Kent', district: 'Swale' }, setting: 'community',
    substances: [{ name: 'nitazene', form: 'tablet', colour: 'blue' }],
    harms: { cases: 4, hospitalisations: 3, deaths: 2 }, symptoms: ['pinpoint pupils'],
    evidence: 'professional',
  };
  const posted = await fetch(`${base}/api/v1/reports`, {
    method: 'POST', body: JSON.stringify(report),
    headers: { Authorization: `Bearer ${tokens.submitter}`, 'Content-Type': 'application/json' },
  });
  const answer = await posted.text();
  assert.equal(posted.status, 202, answer);
  const receipt = JSON.parse(answer);
  assert.equal(receipt.level, 'red');
  const red = receipt.alert_id;
  const mail = path.join(work, 'mail', 'new');
  const file = await until(() => fs.readdirSync(mail).find((f) => f.includes(`${red}-v1-alert`)),
    'an email of the red alert');
  const eml = fs.readFileSync(path.join(mail, file), 'utf8');
  const html = emailPart(eml, 'text/html');
  const text = emailPart(eml, 'text/plain');
  fs.mkdirSync(artifacts, { recursive: true });
  fs.writeFileSync(path.join(artifacts, '22-email-red.txt'), text);
  // The plain text reads in the same order.
  let at = 0;
  for (const next of ['[LDIS RED', 'Act now', 'ACKNOWLEDGE: http', 'WHAT IS HAPPENING', 'Why this level: ',
    'HARMS AND WARNING SIGNS', 'Stop these messages: http']) {
    const found = text.indexOf(next, at);
    assert.ok(found >= 0, `plain text: "${next}" missing or out of order`);
    at = found;
  }

  const views = [['22-email-red-phone', { width: 375, height: 812 }, 'light'],
    ['23-email-red-desktop', { width: 1280, height: 900 }, 'light'],
    ['24-email-red-phone-dark', { width: 375, height: 812 }, 'dark']];
  for (const [name, viewport, scheme] of views) {
    // As a mail client shows it: the HTML alone, nothing fetched (it has no script: the unit
    // test says so; axe-core needs the page's JavaScript on to look at it).
    const context = await browser.newContext({ viewport, colorScheme: scheme, isMobile: viewport.width < 500 });
    const page = await context.newPage();
    await page.route('**/*', (route) => route.abort());
    await page.setContent(html);
    const box = async (selector) => (await page.locator(selector).first().boundingBox());
    const banner = await box('#banner');
    const button = await box('#acknowledge');
    const firstSection = await box('h2');
    const unsubscribe = await box('#unsubscribe');
    assert.ok(banner.y < 5, `${name}: the banner comes first`);
    assert.ok(button.y > banner.y + banner.height - 1 && button.y < firstSection.y,
      `${name}: the button comes after the banner and before the sections`);
    assert.ok(button.y + button.height < viewport.height, `${name}: the button is on the first screen`);
    assert.ok(button.height >= 44, `${name}: the button is big enough to tap (${button.height} px)`);
    const lastSection = await page.locator('h2').last().boundingBox();
    assert.ok(unsubscribe.y > lastSection.y, `${name}: "Stop these messages" comes last`);
    const colours = await page.$eval('#banner', (td) => getComputedStyle(td).backgroundColor);
    assert.equal(colours, 'rgb(212, 53, 28)', `${name}: the banner is red`);
    assert.equal(await page.textContent('h1 span'), 'RED – Drug Alert');
    assert.match(await page.textContent('h1'), /Nitazenes.* in Swale/);
    assert.doesNotMatch(await page.textContent('body'), /Swale, Kent, Kent|One-minute summary/);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= viewport.width, `${name}: nothing scrolls sideways (${width} px)`);
    if (scheme === 'dark') {
      const card = await page.$eval('.ldis-card', (t) => getComputedStyle(t).backgroundColor);
      assert.equal(card, 'rgb(29, 30, 31)', 'the card is dark in a dark scheme');
    }
    await shot(page, name);
    await accessible(page, `${name} email`);
    await context.close();
  }

  // The email gives the strongest reason; the record keeps every one.
  const reason = text.match(/Why this level: (.*)/)[1];
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'coordinator', `/alerts/${red}`);
  await page.waitForSelector('#reasons');
  const reasons = await page.$$eval('#reasons li', (lis) => lis.map((li) => li.textContent));
  assert.ok(reasons.length >= 2, `more than one rule fired: ${reasons}`);
  assert.equal(reasons[0], reason, 'the strongest reason is the first on the record');
  for (const other of reasons.slice(1)) assert.ok(!text.includes(other), `the email repeats "${other}"`);
  await context.close();
});

// EXIF as a phone writes it, cut to what matters: the owner (Artist) and a GPS latitude of
// 51° 23' 20.40" N, as tests/support/photos.cpp makes it.
const photoOwner = 'Jo Smith, Medway ED';
function exifWithGps() {
  const le16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
  const le32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
  const entry = (tag, type, count, value) => Buffer.concat([le16(tag), le16(type), le32(count), value]);
  const artist = Buffer.from(`${photoOwner}\0`);
  const ifd0 = 8, artistAt = ifd0 + 2 + 2 * 12 + 4, gps = artistAt + artist.length;
  const rationals = gps + 2 + 2 * 12 + 4;
  const latitude = Buffer.concat([51, 1, 23, 1, 2040, 100].map(le32));
  return Buffer.concat([Buffer.from('Exif\0\0II*\0', 'binary'), le32(ifd0),
    le16(2), entry(0x013B, 2, artist.length, le32(artistAt)), entry(0x8825, 4, 1, le32(gps)), le32(0),
    artist, le16(2), entry(0x0001, 2, 2, Buffer.from('N\0\0\0', 'binary')), entry(0x0002, 5, 3, le32(rationals)),
    le32(0), latitude]);
}

test('a coordinator sees a photo of the batch on the record and sends it; the partner sees it after a warning', async () => {
  // A photo as a phone would send it: drawn by Chromium, with EXIF holding a GPS position
  // and the owner's name put in after its first marker.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  const drawn = await page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 800; c.height = 600;
    const g = c.getContext('2d');
    g.fillStyle = '#e8e4d8'; g.fillRect(0, 0, 800, 600);
    for (const [x, y] of [[250, 300], [420, 260], [560, 340]]) {
      g.fillStyle = '#3f7fbf'; g.beginPath(); g.ellipse(x, y, 70, 45, 0.3, 0, 2 * Math.PI); g.fill();
      g.fillStyle = '#ffffff'; g.font = 'bold 28px sans-serif'; g.fillText('M30', x - 28, y + 10);
    }
    return c.toDataURL('image/jpeg', 0.9).split(',')[1];
  });
  const plain = Buffer.from(drawn, 'base64');
  const exif = exifWithGps();
  const app1 = Buffer.concat([Buffer.from([0xFF, 0xE1, (exif.length + 2) >> 8, (exif.length + 2) & 0xFF]), exif]);
  const upload = Buffer.concat([plain.subarray(0, 2), app1, plain.subarray(2)]);
  assert.ok(upload.includes(photoOwner), 'the upload carries the owner, so the test can fail');

  // A clinician attaches it on the report form, forgets the substance, and sends it again:
  // the photo is kept through the mistake, as a ticked "Photos attached".
  const clinician = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const form = await clinician.newPage();
  await signIn(form, 'submitter', '/report');
  await form.waitForURL(/\/report$/);
  await fillReport(form, {
    source_type: 'hospital', organisation: 'Darent Valley Hospital', authority: 'Kent',
    district: 'Dartford', setting: 'community', sold_as: 'diazepam', form: 'tablet',
    colour: 'blue', imprint: 'M30', cases: '3', hospitalisations: '2', deaths: '1',
    evidence: 'professional',
  });
  await form.setInputFiles('#photos', { name: 'IMG_0412.jpg', mimeType: 'image/jpeg', buffer: upload });
  await form.click('button:has-text("Send report")');
  await form.waitForSelector('.govuk-error-summary');
  assert.match(await form.textContent('.govuk-error-summary'), /Enter what the drug is/);
  assert.match(await form.textContent('label[for="photo-1"]'), /Photo 1: 800 × 600 pixels/);
  assert.ok(await form.isChecked('#photo-1'), 'the photo attached stays attached');
  await form.locator('#photos').scrollIntoViewIfNeeded();
  await shot(form, '27-report-photo-kept');
  await accessible(form, 'the report form with a photo attached');
  await form.fill('#substance', 'diazepam');
  await form.click('button:has-text("Send report")');
  await form.waitForSelector('.govuk-panel--confirmation');
  const ref = (await form.textContent('#alert')).trim();
  await clinician.close();

  // The record shows it, and offers it for the next version.
  await signIn(page, 'coordinator', `/alerts/${ref}`);
  await page.waitForSelector('#photos img');
  const photo = { id: await page.getAttribute('input[name="photo"]', 'value') };
  assert.match(photo.id, /^ph-[0-9a-f]{32}$/);
  assert.ok(await page.$eval('#photos img', (img) => img.complete && img.naturalWidth === 800),
    'the photo loads on the record');
  await page.check(`#photo-${photo.id}`);
  await shot(page, '25-record-photo');
  await accessible(page, 'the record with a photo');
  await page.click('button:has-text("Issue an update with this wording and audience")');
  await page.waitForURL(new RegExp(`/alerts/${ref}`));
  assert.ok(await page.isChecked(`#photo-${photo.id}`), 'the latest version carries the photo');
  await context.close();

  // The partner's email: the photo after its warning, inline, as the page would show it.
  const mail = path.join(work, 'mail', 'new');
  const file = await until(() => fs.readdirSync(mail).find((f) => f.includes(`${ref}-v2-alert`)),
    'an email of the version with the photo');
  const eml = fs.readFileSync(path.join(mail, file), 'utf8');
  assert.ok(!eml.includes(photoOwner) && !eml.includes('Exif'), 'nothing of the EXIF is in the email');
  const html = emailPart(eml, 'text/html');
  const cid = `${photo.id}@ldis`;
  const encoded = eml.split(`Content-ID: <${cid}>\r\n`)[1].split('\r\n\r\n')[1].split('--')[0].replace(/\s+/g, '');
  const jpeg = Buffer.from(encoded, 'base64');
  assert.ok(!jpeg.includes(photoOwner) && !jpeg.includes('Exif'), 'the photo sent is pixels alone');
  const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true });
  const view = await phone.newPage();
  await view.route('**/*', (route) => route.abort());
  // A mail client puts the part where the HTML says cid:; here a data: URL stands for it.
  await view.setContent(html.replace(`cid:${cid}`, `data:image/jpeg;base64,${encoded}`));
  const warning = await view.locator('#photo-warning').boundingBox();
  const image = await view.locator(`img[alt^="Photo 1 of 1"]`).boundingBox();
  assert.ok(warning && image && warning.y < image.y, 'the warning comes before the photo');
  assert.ok(image.width <= 375, 'the photo fits a phone');
  await view.locator('#photo-warning').scrollIntoViewIfNeeded();
  await shot(view, '26-email-photo-phone');
  await accessible(view, 'the email with a photo');
  await phone.close();
});
