// What the browser tests share: the real ldisd (the shipped configuration, a peer whose
// versions it reviews, tokens for each role) and mosquitto on loopback, Debian's Chromium,
// and the helpers every test uses (waiting, screenshots, the accessibility check, the form).
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

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const build = process.env.LDIS_BUILD_DIR || path.join(root, 'build');
export const artifacts = process.env.LDIS_E2E_ARTIFACTS || path.join(build, 'e2e-artifacts');
export const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ldis-e2e-'));
const children = [];

export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export async function until(probe, what, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function start(command, args, log) {
  const out = fs.openSync(log, 'a');
  const child = spawn(command, args, { stdio: ['ignore', out, out] });
  children.push(child);
  return child;
}

// One part of an email ldisd wrote (each part is base64 in UTF-8), decoded.
export function emailPart(eml, type) {
  const encoded = eml.split(`Content-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n`)[1]
    .split('--')[0].replace(/\s+/g, '');
  return Buffer.from(encoded, 'base64').toString('utf8');
}

export async function shot(page, name) {
  fs.mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

// No serious or critical WCAG 2.2 A/AA violation on the page as it is now.
export async function accessible(page, name) {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'])
    .analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(', ')})`), [],
    `${name} has accessibility violations`);
}

// Fills the report form as a clinician would: each field by its id; the radios (authority,
// evidence) by their value.
export async function fillReport(page, fields) {
  for (const [id, value] of Object.entries(fields)) {
    if (id === 'authority' || id === 'evidence') await page.check(`input[name="${id}"][value="${value}"]`);
    else if (await page.$eval(`#${id}`, (e) => e.tagName === 'SELECT')) await page.selectOption(`#${id}`, value);
    else await page.fill(`#${id}`, value);
  }
}

// What startLdis started: the address of its pages and a token for each role.
const started = { base: '', tokens: {} };

// Signs in as `role` through the sign-in page, which then goes on to `next`.
export async function signIn(page, role, next = '/') {
  if (next === '/report') await page.goto(`${started.base}/login?next=/report`);  // open to all
  else await page.goto(`${started.base}${next}`);
  assert.match(page.url(), /\/login/);
  await page.fill('#key', started.tokens[role]);
  await page.click('button:has-text("Sign in")');
}

// Starts mosquitto and ldisd in `work`, makes a token for each role and launches Chromium.
export async function startLdis() {
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const base = `http://127.0.0.1:${httpPort}`;
  fs.writeFileSync(path.join(work, 'mosquitto.conf'),
    `listener ${mqttPort} 127.0.0.1\nallow_anonymous true\n${process.getuid() === 0 ? 'user root\n' : ''}`);
  start('/usr/sbin/mosquitto', ['-c', path.join(work, 'mosquitto.conf')], path.join(work, 'mosquitto.log'));
  const db = path.join(work, 'ldis.db');
  // The shipped configuration, with its paths made absolute and a peer, Medway, whose
  // versions (signed here with its key) this instance puts before its coordinators.
  const mqtt = mqttPort;
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path.join(work, 'self.key')]);
  fs.chmodSync(path.join(work, 'self.key'), 0o600);
  const medwayKey = crypto.generateKeyPairSync('ed25519');
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
  const tokens = {};
  for (const role of ['submitter', 'coordinator', 'admin']) {
    tokens[role] = execFileSync(path.join(build, 'app/ldisctl'),
      ['tokens', 'create', '--db', db, '--role', role, '--name', `${role}@example.org`],
      { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  }
  const browser = await chromium.launch({
    executablePath: process.env.LDIS_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  Object.assign(started, { base, tokens });
  return { browser, base, tokens, mqtt, medwayKey };
}

// Closes the browser, stops what startLdis started and removes the work folder.
export async function stopLdis(browser) {
  if (browser) await browser.close();
  for (const child of children.reverse()) child.kill('SIGTERM');
  if (process.env.LDIS_E2E_KEEP) console.log(`work folder kept: ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
}
