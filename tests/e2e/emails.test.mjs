// Browser tests of what a partner receives: a red alert's email read in Chromium on a phone
// and at a desk, light and dark, and a photo of the batch going out with an alert. The real
// ldisd and mosquitto on loopback, as in pages.test.mjs (tests/e2e/support.mjs starts them).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  accessible, artifacts, emailPart, fillReport, shot, signIn, startLdis, stopLdis, until, work,
} from './support.mjs';

let browser, base, tokens = {};

before(async () => {
  ({ browser, base, tokens } = await startLdis());
});

after(async () => {
  await stopLdis(browser);
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
