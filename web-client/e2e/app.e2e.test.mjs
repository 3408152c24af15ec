// Browser tests against a real ticketwire server: node --test, playwright-core, system Chromium.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { Gate, Server, apiClient, repoRoot } from './server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = path.join(repoRoot, 'artifacts', 'screenshots');
const ADMIN = { email: 'admin@example.com', password: 'admin-password-1', name: 'Ada Admin' };
const AGENT = { email: 'agent@example.com', password: 'agent-password-1', name: 'Andy Agent' };
const CUSTOMER = { email: 'customer@example.com', password: 'customer-password-1', name: 'Cory Customer' };
const AGENT2 = { email: 'bea@example.com', password: 'agent-password-2', name: 'Bea Agent' };
const AXE = path.join(repoRoot, 'web-client', 'node_modules', 'axe-core', 'axe.min.js');
const AXE_SOURCE = readFileSync(AXE, 'utf8');
const axeFindings = [];

/** Runs axe-core on the page as it is; serious and critical findings fail the last test. */
async function axe(page, name) {
  // Evaluated through the debugging protocol: the app's Content-Security-Policy refuses inline
  // scripts, which is what addScriptTag would add.
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
  });
  for (const f of found) axeFindings.push(`${name}: ${f}`);
}

const server = new Server();
let base; // the server itself, for API calls made by the test
let web; // what the browsers open: the same server behind a gate
let gate;
let browser;
const consoleErrors = [];
/** While true, the WebSocket errors a restart causes are expected and not counted. */
let restarting = false;
const pages = {};

function watch(page, who) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const url = msg.location()?.url ?? '';
    // "No webhook yet" is a 404 by the API's design (see the report); nothing else may fail.
    if (/status of 404/.test(text) && url.endsWith('/api/users/me/webhook')) return;
    if (restarting && /WebSocket|ERR_CONNECTION_REFUSED|socket\.io/i.test(text + url)) return;
    consoleErrors.push(`[${who}] console.error: ${text} ${url}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`[${who}] pageerror: ${err.message}`));
}

async function newPage(who, viewport = { width: 1280, height: 860 }) {
  const ctx = await browser.newContext({ baseURL: web, viewport });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10_000);
  page.on('dialog', (d) => d.accept());
  watch(page, who);
  pages[who] = page;
  return page;
}

async function signIn(page, user) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/tickets');
  await waitOnline(page);
}

async function waitOnline(page) {
  await page.locator('[data-testid=connection][data-status=online]').waitFor({ timeout: 15_000 });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function unread(page) {
  return Number(await page.getByTestId('unread-count').textContent());
}

async function token(user) {
  const r = await apiClient(base)('POST', '/api/auth/login', { email: user.email, password: user.password });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.access_token;
}

describe('ticketwire web-client', { timeout: 300_000 }, () => {
  let agent;
  let customer;
  let ticketId;
  const subject = `Printer on fire ${Date.now()}`;

  before(async () => {
    server.checkBuilt();
    mkdirSync(SHOTS, { recursive: true });
    server.createAdmin(ADMIN.email, ADMIN.password, ADMIN.name);
    base = await server.start();
    gate = new Gate(server.port);
    web = await gate.listen();
    const adminApi = apiClient(base, await token(ADMIN));
    let r = await adminApi('POST', '/api/users', { ...AGENT, role: 'agent' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    r = await adminApi('POST', '/api/users', { ...AGENT2, role: 'agent' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    // Playwright gives every launch its own fresh --user-data-dir (it refuses one passed in args).
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await gate?.close();
    await server.stop();
  });

  it('signs in an agent and registers a customer', async () => {
    agent = await newPage('agent');
    await agent.goto('/login');
    await shot(agent, '01-sign-in');
    await axe(agent, 'sign in');
    await signIn(agent, AGENT);
    customer = await newPage('customer');
    await customer.goto('/register');
    await customer.getByLabel('Name').fill(CUSTOMER.name);
    await customer.getByLabel('Email').fill(CUSTOMER.email);
    await customer.getByLabel('Password').fill(CUSTOMER.password);
    await customer.getByRole('button', { name: 'Register' }).click();
    await customer.waitForURL('**/tickets');
    await waitOnline(customer);
    // Role decides what shows.
    assert.equal(await customer.getByRole('link', { name: 'Users' }).count(), 0);
    assert.equal(await customer.getByRole('link', { name: 'Import' }).count(), 0);
    assert.equal(await agent.getByRole('link', { name: 'Import' }).count(), 1);
  });

  it("a customer's new ticket appears at the top of the agent's list within a second", async () => {
    await customer.getByRole('link', { name: 'New ticket' }).click();
    await customer.getByLabel('Subject').fill(subject);
    await customer.getByLabel('Description').fill('Smoke is coming out of <b>tray 2</b>');
    await customer.getByLabel('Priority').selectOption('high');
    await customer.getByRole('button', { name: 'Open ticket' }).click();
    await customer.waitForURL(/\/tickets\/[0-9a-f-]{36}$/);
    const created = Date.now();
    ticketId = customer.url().split('/').pop();
    await agent.locator('.ticket-row').first().getByText(subject).waitFor({ timeout: 1000 });
    const took = Date.now() - created;
    assert.ok(took <= 1000, `took ${took} ms`);
    // User content is text, never HTML.
    await customer.getByText('Smoke is coming out of <b>tray 2</b>').waitFor();
    assert.equal(await customer.locator('.description b').count(), 0);
    await shot(agent, '02-agent-ticket-list');
  });

  it("the agent's comment reaches the customer's page and bell; internal notes never do", async () => {
    await agent.locator('.ticket-row').first().getByText(subject).click();
    await agent.waitForURL(`**/tickets/${ticketId}`);
    await agent.getByRole('heading', { name: subject }).waitFor();
    // Staff see who opened it, by name, and its number.
    await agent.getByTestId('requester').getByText(CUSTOMER.name).waitFor();
    assert.match(await agent.getByTestId('ticket-number').textContent(), /^#\d+$/);

    await agent.getByLabel('Internal note (staff only)').check();
    await agent.getByTestId('internal-warning').waitFor();
    await agent.getByRole('textbox', { name: 'Message' }).fill('Internal: customer seems to be a VIP');
    await agent.getByRole('button', { name: 'Add internal note' }).click();
    await agent.locator('.comment.internal').getByText('Internal: customer seems to be a VIP').waitFor();
    // After a note the composer is back to a public reply, and says so.
    assert.equal(await agent.getByTestId('internal-warning').count(), 0);

    await agent.getByRole('textbox', { name: 'Message' }).fill('We are sending a **technician**.');
    await agent.getByRole('textbox', { name: 'Message' }).press('Control+Enter');
    await customer.locator('.comment').getByText('technician').waitFor({ timeout: 3000 });
    // Markdown is rendered, safely.
    assert.equal(await customer.locator('.comment strong', { hasText: 'technician' }).count(), 1);
    // The ticket is on the customer's screen: its notification is read at once, with no toast.
    await customer.waitForTimeout(400);
    assert.equal(await customer.getByTestId('toast').count(), 0);
    assert.equal(await unread(customer), 0);
    // The internal note came first; the public comment after it is here, so a leak would be too.
    assert.equal(await customer.getByText('Internal: customer seems to be a VIP').count(), 0);
    assert.equal(await customer.locator('.comment.internal').count(), 0);

    // Threaded reply from the customer shows up nested on the agent's side.
    await customer.getByRole('button', { name: /Reply to .*comment/ }).first().click();
    await customer.getByRole('textbox', { name: 'Message' }).fill('Thanks, I will be here.');
    await customer.getByRole('button', { name: 'Send', exact: true }).click();
    await agent.locator('.replies .comment').getByText('Thanks, I will be here.').waitFor({ timeout: 3000 });
    await shot(agent, '03-agent-ticket-page');
    await shot(customer, '04-customer-ticket-page');
    await axe(agent, 'agent ticket page');
    await axe(customer, 'customer ticket page');
  });

  it('a status change updates both pages and the lists', async () => {
    await agent.getByLabel('Status').selectOption('in_progress');
    await customer.getByTestId('ticket-status').getByText('In progress').waitFor({ timeout: 3000 });
    await agent.getByTestId('ticket-status').getByText('In progress').waitFor();
    await agent.getByLabel('Status').selectOption('resolved');
    await customer.getByTestId('ticket-status').getByText('Resolved').waitFor({ timeout: 3000 });
    // The customer's list (opened later) reflects it, then updates in place.
    await customer.getByRole('link', { name: 'All tickets' }).click();
    await customer.locator('.ticket-row', { hasText: subject }).getByText('Resolved').waitFor();
    await agent.getByLabel('Priority').selectOption('urgent');
    await customer.locator('.ticket-row', { hasText: subject }).getByText('Urgent').waitFor({ timeout: 3000 });
    await customer.locator('.ticket-row', { hasText: subject }).click();
    await customer.getByRole('heading', { name: subject }).waitFor();
  });

  it('uploads an attachment with progress; it shows live for the customer and downloads', async () => {
    const content = Buffer.alloc(512 * 1024, 'x');
    await agent.getByLabel('Attach a file').setInputFiles({ name: 'log.txt', mimeType: 'text/plain', buffer: content });
    await agent.getByRole('button', { name: 'Upload' }).click();
    await agent.locator('.attachments li', { hasText: 'log.txt' }).waitFor();
    await customer.locator('.attachments li', { hasText: 'log.txt' }).waitFor({ timeout: 3000 });
    const [download] = await Promise.all([customer.waitForEvent('download'), customer.getByRole('button', { name: 'Download log.txt' }).click()]);
    assert.equal(download.suggestedFilename(), 'log.txt');
    const file = await download.path();
    const { statSync } = await import('node:fs');
    assert.equal(statSync(file).size, content.length);
    await agent.getByRole('button', { name: 'Delete log.txt' }).click();
    await customer.locator('.attachments li', { hasText: 'log.txt' }).waitFor({ state: 'detached', timeout: 3000 });
  });

  it('reconnects after a server restart and shows what it missed', async () => {
    await waitOnline(customer);
    await waitOnline(agent);
    restarting = true;
    gate.hold(); // the pages' reconnects are refused until the missed changes are made
    await server.kill();
    await customer.locator('[data-testid=connection][data-status=reconnecting]').waitFor({ timeout: 10_000 });
    await shot(customer, '05-customer-reconnecting');
    await server.restart();
    const agentApi = apiClient(base, await token(AGENT));
    let r = await agentApi('POST', `/api/tickets/${ticketId}/comments`, { content: 'Posted while you were away.' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    r = await agentApi('PATCH', `/api/tickets/${ticketId}`, { status: 'pending' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(await customer.getByText('Posted while you were away.').count(), 0, 'the page was offline');
    gate.release();
    await waitOnline(customer);
    await customer.getByText('Posted while you were away.').waitFor({ timeout: 5000 });
    await customer.getByTestId('ticket-status').getByText('Pending').waitFor({ timeout: 5000 });
    await agent.getByText('Posted while you were away.').waitFor({ timeout: 5000 });
    await waitOnline(agent);
    // No duplicates after the catch-up.
    assert.equal(await customer.getByText('Posted while you were away.').count(), 1);
    restarting = false;
  });

  it('notifications drawer: list, mark read, read all', async () => {
    // Away from the ticket, its news come as toasts and count as unread; the bell shows no 0.
    await customer.getByRole('link', { name: 'All tickets' }).click();
    await customer.locator('.ticket-row').first().waitFor();
    assert.equal(await customer.getByTestId('unread-count').textContent(), '');
    const agentApi = apiClient(base, await token(AGENT));
    for (const text of ['First news', 'Second news', 'Third news', 'Fourth news']) {
      const r = await agentApi('POST', `/api/tickets/${ticketId}/comments`, { content: text });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    await customer.waitForFunction(() => Number(document.querySelector('[data-testid=unread-count]')?.textContent) >= 4, null, { timeout: 5000 });
    // At most three toasts at once.
    assert.ok((await customer.getByTestId('toast').count()) <= 3);
    assert.ok((await unread(customer)) > 0);
    await customer.getByTestId('bell').click();
    const drawer = customer.getByRole('dialog', { name: /Notifications/ });
    await drawer.waitFor();
    await shot(customer, '06-notifications-drawer');
    await axe(customer, 'notifications drawer');
    const n = await unread(customer);
    await drawer.getByRole('button', { name: 'Mark read' }).first().click();
    await customer.waitForFunction((x) => Number(document.querySelector('[data-testid=unread-count]')?.textContent) === x - 1, n);
    await drawer.getByRole('button', { name: 'Mark all read' }).click();
    await customer.waitForFunction(() => document.querySelector('[data-testid=unread-count]')?.textContent === '');
    await customer.keyboard.press('Escape');
    await drawer.waitFor({ state: 'detached' });
    await customer.goto(`/tickets/${ticketId}`);
    await waitOnline(customer);
  });

  it('ticket list filters and search', async () => {
    const agentApi = apiClient(base, await token(AGENT));
    for (let i = 0; i < 3; i++) await agentApi('POST', '/api/tickets', { subject: `Low thing ${i}`, description: 'meh', priority: 'low' });
    await agent.goto('/tickets');
    await waitOnline(agent);
    await agent.getByLabel('Priority').selectOption('low');
    await agent.locator('.ticket-row', { hasText: 'Low thing 2' }).waitFor();
    await agent.waitForFunction(() => document.querySelectorAll('.ticket-row').length === 3);
    // A live ticket that does not match the filter stays out; one that does comes in on top.
    await agentApi('POST', '/api/tickets', { subject: 'Urgent other', description: 'x', priority: 'urgent' });
    await agentApi('POST', '/api/tickets', { subject: 'Low live', description: 'x', priority: 'low' });
    await agent.locator('.ticket-row').first().getByText('Low live').waitFor({ timeout: 3000 });
    assert.equal(await agent.locator('.ticket-row', { hasText: 'Urgent other' }).count(), 0);
    await agent.getByLabel('Priority').selectOption('');
    await agent.getByLabel('Search').fill('printer on fire');
    await agent.getByRole('button', { name: 'Search' }).click();
    await agent.waitForFunction(() => document.querySelectorAll('.ticket-row').length === 1);
    await agent.locator('.ticket-row', { hasText: subject }).waitFor();
    // The server's answer is shown as it is: words in any order, a quoted phrase.
    for (const [words, rows] of [['nowhere-to-be-found', 0], ['fire printer', 1], ['nowhere-to-be-found', 0], ['"on fire"', 1]]) {
      await agent.getByLabel('Search').fill(words);
      await agent.getByRole('button', { name: 'Search' }).click();
      if (rows) await agent.locator('.ticket-row', { hasText: subject }).waitFor();
      else await agent.getByText('No tickets match.').waitFor();
    }
    // Deleting a ticket removes it live.
    await agentApi('DELETE', `/api/tickets/${ticketId}`);
    await agent.locator('.ticket-row', { hasText: subject }).waitFor({ state: 'detached', timeout: 3000 });
    await customer.getByText('This ticket was deleted.').waitFor({ timeout: 3000 });
  });

  it('knowledge base: staff write, save a draft and publish; customers read it live', async () => {
    await customer.goto('/kb');
    await waitOnline(customer);
    await agent.goto('/kb');
    await agent.getByRole('link', { name: 'Write an article' }).click();
    await agent.getByLabel('Title').fill('Resetting your password');
    await agent.getByLabel('Category').fill('accounts');
    await agent.getByLabel('Body').fill('1. Open settings\n2. Choose <script>alert(1)</script> reset');
    await agent.getByRole('button', { name: 'Save draft' }).click();
    await agent.waitForURL(/\/kb\/[0-9a-f-]{36}$/);
    await agent.getByText('Draft', { exact: true }).waitFor();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await customer.getByText('Resetting your password').count(), 0, 'drafts stay hidden');
    await agent.getByRole('link', { name: 'Edit' }).click();
    await agent.getByLabel('Title').waitFor();
    await shot(agent, '07-kb-editor');
    await axe(agent, 'kb editor');
    await agent.getByRole('button', { name: 'Publish' }).click();
    await agent.getByText('Published', { exact: true }).waitFor();
    await customer.getByRole('link', { name: 'Resetting your password' }).waitFor({ timeout: 3000 });
    await customer.getByLabel('Search articles').fill('password');
    await customer.getByRole('button', { name: 'Search' }).click();
    await customer.getByRole('link', { name: 'Resetting your password' }).click();
    await customer.getByText('<script>alert(1)</script>', { exact: false }).waitFor();
    await shot(customer, '08-kb-article');
    await axe(customer, 'kb article');
  });

  it('admin: list, create and deactivate users', async () => {
    const admin = await newPage('admin');
    await signIn(admin, ADMIN);
    await admin.getByRole('link', { name: 'Users' }).click();
    await admin.locator('tr', { hasText: CUSTOMER.email }).waitFor();
    const form = admin.locator('form', { hasText: 'Create a user' });
    await form.getByLabel('Name').fill('Nina New');
    await form.getByLabel('Email').fill('nina@example.com');
    await form.getByLabel('Password').fill('nina-password-1');
    await form.getByLabel('Role').selectOption('customer');
    await form.getByRole('button', { name: 'Create' }).click();
    const row = admin.locator('tr', { hasText: 'nina@example.com' });
    await row.waitFor();
    await row.getByRole('button', { name: /Deactivate/ }).click();
    await row.getByText('Deactivated').waitFor();
    await shot(admin, '09-users');
    await axe(admin, 'users');
  });

  it('webhook: set, show the secret once, test, live receipt and the delivery log', async () => {
    await agent.goto('/settings/webhook');
    await agent.getByLabel('Webhook URL').fill('/api/notifications/webhooks/notifications');
    await agent.getByRole('button', { name: 'Save' }).click();
    await agent.getByTestId('webhook-secret').waitFor();
    await agent.getByRole('button', { name: 'Send test' }).click();
    await agent.locator('.received li').first().waitFor({ timeout: 10_000 });
    const entry = agent.locator('.deliveries li').first();
    await entry.waitFor();
    await agent.getByRole('button', { name: 'Refresh' }).click();
    await entry.getByRole('button').first().click();
    await entry.locator('.attempts tbody tr').first().waitFor();
    await shot(agent, '10-webhook');
    await axe(agent, 'settings');
    // Reloading shows no secret any more.
    await agent.reload();
    await waitOnline(agent);
    await agent.getByLabel('Webhook URL').waitFor();
    assert.equal(await agent.getByTestId('webhook-secret').count(), 0);
    await agent.getByRole('button', { name: 'Delete' }).click();
    await agent.getByText('No webhook set.').waitFor();
  });

  it('CSV import (skipped when the ingestion route is not there yet)', async (t) => {
    const agentApi = apiClient(base, await token(AGENT));
    const probe = await agentApi('POST', '/api/integrations/webhook/batch', 'subject,description,priority,category,customer_email,id\n', { 'Content-Type': 'text/csv' });
    if (probe.status === 404 && probe.body?.code === 'not_found') {
      t.skip('POST /api/integrations/webhook/batch answers 404: ingestion has not landed on the server yet');
      return;
    }
    await agent.goto('/import');
    await agent.getByRole('button', { name: 'Import' }).click();
    await agent.getByTestId('import-summary').or(agent.locator('main p.error')).first().waitFor();
    await shot(agent, '11-import');
    await axe(agent, 'import');
    const summary = await agent.getByTestId('import-summary').count();
    assert.equal(summary, 1, `import failed: ${await agent.locator('main p.error').textContent().catch(() => '')}`);
  });

  it('is responsive: the ticket list on a phone', async () => {
    const phone = await newPage('phone', { width: 390, height: 800 });
    await signIn(phone, CUSTOMER);
    await phone.getByRole('button', { name: 'Menu' }).click();
    await phone.getByRole('link', { name: 'Knowledge base' }).waitFor();
    await shot(phone, '12-mobile-tickets');
    await axe(phone, 'phone ticket list');
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `page scrolls sideways by ${overflow}px`);
  });

  it('a helpdesk day: keyboard and bulk actions, views, search by number, assignment to a colleague, timeline, canned reply, drafts, the phone', async () => {
    const bea = await newPage('bea');
    await signIn(bea, AGENT2);
    // Bea wants to hear of new unassigned tickets.
    await bea.goto('/settings/webhook');
    await bea.getByLabel('Tell me about every new ticket nobody is assigned to').check();
    await bea.getByText('You will be told of new unassigned tickets').waitFor();
    await bea.goto('/tickets');
    await waitOnline(bea);
    await bea.getByTestId('count-unassigned').filter({ hasText: /\d/ }).waitFor();
    const unassignedBefore = Number(await bea.getByTestId('count-unassigned').textContent());
    const customerApi = apiClient(base, await token(CUSTOMER));
    const made = await customerApi('POST', '/api/tickets', { subject: 'Laptop will not boot', description: 'Black screen since the update' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const { id, number } = made.body;
    await bea.waitForFunction(() => Number(document.querySelector('[data-testid=unread-count]')?.textContent) >= 1, null, { timeout: 5000 });
    // The view counts follow live.
    await bea.waitForFunction((n) => Number(document.querySelector('[data-testid=count-unassigned]')?.textContent) === n + 1, unassignedBefore, { timeout: 5000 });
    // The agent's Unassigned view has it live.
    await agent.goto('/tickets');
    await waitOnline(agent);
    // Keyboard and bulk: j moves to the first row, x selects it, a checkbox the second; one
    // action changes both.
    await agent.locator('.ticket-row').nth(1).waitFor();
    await agent.locator('main h1').click();
    await agent.keyboard.press('j');
    await agent.keyboard.press('x');
    await agent.locator('.ticket-row').nth(1).locator('input.select').check();
    const bulkRegion = agent.getByRole('region', { name: 'Bulk actions' });
    await bulkRegion.getByText('2 selected').waitFor();
    const firstTwo = [await agent.locator('.ticket-row').nth(0).getAttribute('data-ticket-id'), await agent.locator('.ticket-row').nth(1).getAttribute('data-ticket-id')];
    await bulkRegion.getByLabel('Set priority').selectOption('urgent');
    for (const tid of firstTwo) await agent.locator(`.ticket-row[data-ticket-id="${tid}"]`).getByText('Urgent').waitFor({ timeout: 5000 });
    await shot(agent, '18-queue-bulk');
    await agent.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Unassigned' }).click();
    await agent.locator('.ticket-row', { hasText: 'Laptop will not boot' }).waitFor();
    // Found by number.
    await agent.getByLabel('Search').fill(`#${number}`);
    await agent.getByRole('button', { name: 'Search' }).click();
    await agent.waitForFunction(() => document.querySelectorAll('.ticket-row').length === 1);
    await agent.locator('.ticket-row', { hasText: `#${number}` }).click();
    await agent.getByRole('heading', { name: /Laptop will not boot/ }).waitFor();
    // Assigned to a colleague, who is told; the timeline says who did it.
    await agent.getByLabel('Assignee').selectOption({ label: AGENT2.name });
    await agent.getByTestId('timeline').getByText(`Assignee: nobody → ${AGENT2.name}`).waitFor({ timeout: 5000 });
    await bea.waitForFunction(() => Number(document.querySelector('[data-testid=unread-count]')?.textContent) >= 2, null, { timeout: 5000 });
    // A canned reply, written once, inserted with the requester's name filled in.
    await agent.goto('/canned-replies');
    await agent.getByLabel('Title').fill('Restart first');
    await agent.getByLabel('Text (Markdown)').fill('Hello {{requester.name}}, please hold the power button for 10 seconds (ticket #{{ticket.number}}).');
    await agent.getByRole('button', { name: 'Add canned reply' }).click();
    await agent.locator('.canned-list li', { hasText: 'Restart first' }).waitFor();
    await shot(agent, '13-canned-replies');
    await axe(agent, 'canned replies');
    await agent.goto(`/tickets/${id}`);
    await waitOnline(agent);
    await agent.getByLabel('Canned reply').selectOption({ label: 'Restart first' });
    const text = await agent.getByRole('textbox', { name: 'Message' }).inputValue();
    assert.equal(text, `Hello ${CUSTOMER.name}, please hold the power button for 10 seconds (ticket #${number}).`);
    // The draft survives a reload.
    await agent.reload();
    await waitOnline(agent);
    assert.equal(await agent.getByRole('textbox', { name: 'Message' }).inputValue(), text);
    await agent.getByRole('button', { name: 'Send public reply' }).click();
    await agent.locator('.comment', { hasText: 'power button' }).waitFor();
    assert.equal(await agent.getByRole('textbox', { name: 'Message' }).inputValue(), '');
    await agent.getByLabel('Status').selectOption('pending');
    await agent.getByTestId('timeline').getByText('Status: Open → Pending').waitFor({ timeout: 5000 });
    await shot(agent, '14-helpdesk-ticket');
    const phone = await newPage('agent-phone', { width: 390, height: 844 });
    await signIn(phone, AGENT);
    await phone.goto(`/tickets/${id}`);
    await phone.getByRole('textbox', { name: 'Message' }).waitFor();
    // The composer is within the first screen.
    const box = await phone.getByRole('textbox', { name: 'Message' }).boundingBox();
    assert.ok(box && box.y < 844, `composer starts at ${box?.y}px`);
    await shot(phone, '15-mobile-ticket');
    await axe(phone, 'phone ticket page');
  });

  it('presence: two agents and the customer on one ticket see each other, and the customer never sees a note being written', async () => {
    const bea = pages.bea;
    const customerApi = apiClient(base, await token(CUSTOMER));
    const made = await customerApi('POST', '/api/tickets', { subject: 'Screen flickers', description: 'Every few seconds' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const { id } = made.body;
    const bar = (page) => page.getByTestId('presence');
    const barText = (page) => page.evaluate(() => document.querySelector('[data-testid=presence]')?.textContent ?? '');
    for (const page of [agent, bea, customer]) {
      await page.goto(`/tickets/${id}`);
      await waitOnline(page);
    }
    // Staff see everyone, with their role; the customer sees support by name, never itself.
    await bar(bea).getByText(`${AGENT.name} (agent) is viewing`).waitFor({ timeout: 5000 });
    await bar(bea).getByText(`${CUSTOMER.name} (requester) is viewing`).waitFor({ timeout: 5000 });
    await bar(customer).getByText(`${AGENT.name} (support) is viewing`).waitFor({ timeout: 5000 });
    await bar(customer).getByText(`${AGENT2.name} (support) is viewing`).waitFor({ timeout: 5000 });
    assert.ok(!(await barText(customer)).includes(CUSTOMER.name), 'the customer is not shown to itself');

    // Andy writes an internal note: Bea is told, the customer still sees Andy viewing.
    await agent.getByLabel('Internal note (staff only)').check();
    await agent.getByRole('textbox', { name: 'Message' }).pressSequentially('checking the logs', { delay: 20 });
    await bar(bea).getByText(`${AGENT.name} (agent) is writing an internal note`).waitFor({ timeout: 5000 });
    await bar(bea).getByText(`${AGENT.name} is typing an internal note…`).waitFor({ timeout: 5000 });
    await shot(bea, '19-presence-staff');
    await customer.waitForTimeout(800); // several batches: anything meant for staff would be here by now
    const seen = await barText(customer);
    assert.match(seen, new RegExp(`${AGENT.name} \\(support\\) is viewing`));
    assert.ok(!/internal|note|typing/i.test(seen), `the customer saw: ${seen}`);

    // Now a public reply: the customer sees it being written.
    await agent.getByLabel('Public reply (the requester sees it)').check();
    await agent.getByRole('textbox', { name: 'Message' }).fill('');
    await agent.getByRole('textbox', { name: 'Message' }).pressSequentially('On my way', { delay: 20 });
    await bar(customer).getByText(`${AGENT.name} (support) is writing a reply`).waitFor({ timeout: 5000 });
    await bar(customer).getByText(`${AGENT.name} is typing…`).waitFor({ timeout: 5000 });
    await shot(customer, '20-presence-customer');
    await axe(customer, 'customer ticket page with presence');

    // Bea opens the composer while Andy writes a reply: she is told who (advisory, never a lock).
    await bea.getByRole('textbox', { name: 'Message' }).click();
    await bea.getByTestId('also-replying').getByText(`${AGENT.name} is already writing a reply to this ticket.`).waitFor({ timeout: 5000 });

    // Staff see it in the queue too.
    await bea.goto('/tickets');
    await waitOnline(bea);
    await bea.locator(`.ticket-row[data-ticket-id="${id}"]`).getByTestId('presence-dots').getByText(new RegExp(AGENT.name)).waitFor({ timeout: 5000 });

    // Andy leaves the ticket: gone from the customer's page at once, not after the expiry.
    await agent.getByRole('textbox', { name: 'Message' }).fill('');
    await agent.goto('/tickets');
    await customer.waitForFunction((name) => !(document.querySelector('[data-testid=presence]')?.textContent ?? '').includes(name), AGENT.name, { timeout: 5000 });
  });

  it('first run: the setup link in the log creates the first admin in the browser', async () => {
    const fresh = new Server();
    try {
      await fresh.start();
      for (let i = 0; i < 100 && !fresh.setupLink; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(fresh.setupLink, 'the server printed a setup link');
      const link = fresh.setupLink.replace(/^http:\/\/[^/]+/, fresh.url);
      const page = await newPage('first-run');
      await page.goto(`${fresh.url}/login`);
      await page.getByTestId('setup-hint').waitFor();
      await shot(page, '16-first-run-hint');
      await page.goto(link);
      await page.getByLabel('Your name').fill('Fay First');
      await page.getByLabel('Email').fill('fay@example.com');
      await page.getByLabel('Password (at least 8 characters)').fill('first-admin-password');
      await shot(page, '17-first-run-setup');
      await axe(page, 'first-run setup');
      await page.getByRole('button', { name: 'Create admin account' }).click();
      await page.waitForURL('**/users');
      await page.locator('tr', { hasText: 'fay@example.com' }).waitFor();
      const again = await apiClient(fresh.url)('GET', '/api/setup');
      assert.deepEqual(again.body, { needed: false });
    } finally {
      await fresh.stop();
    }
  });

  it('has no serious or critical accessibility findings (axe-core)', () => {
    assert.deepEqual(axeFindings, []);
  });

  it('logged no console errors on any page', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
