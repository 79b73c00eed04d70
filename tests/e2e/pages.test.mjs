// Browser tests of the people's pages: the real ldisd and mosquitto on loopback, SQLite on
// disk, Debian's Chromium driven by playwright-core, accessibility checked by axe-core.
// Screenshots of every page are kept in $LDIS_E2E_ARTIFACTS (default build/e2e-artifacts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  accessible, artifacts, emailPart, fillReport, root, shot, signIn, startLdis, stopLdis, until, work,
} from './support.mjs';

let browser, base, tokens = {}, reference, alertRef, mqtt, medwayKey, ackLink;

before(async () => {
  ({ browser, base, tokens, mqtt, medwayKey } = await startLdis());
});

after(async () => {
  await stopLdis(browser);
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
