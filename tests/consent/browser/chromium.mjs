// Headless Chromium as every browser test here launches it. As in the
// machine notes: root needs --no-sandbox, and without the
// background-networking flags Chromium keeps dialling Google's hosts, which
// this machine's closed network refuses; with them, every request a test
// sees is the page's own.
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launch(executablePath) {
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
}
