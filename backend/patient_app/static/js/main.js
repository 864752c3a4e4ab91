// The patient app: routes, the network banner, the service worker and the upload queue.
import {SignedOut, signedIn} from './api.js';
import * as queue from './queue.js';
import {captureView, consentsView, enrolView, h, moreView, progressView, signInView, todayView,
  waitingSection} from './views.js';

const OPEN = new Set(['enrol', 'signin']);

async function route() {
  const hash = location.hash || '#/';
  if (hash.startsWith('#enrol=')) {
    // The invitation link: keep its token in memory only, and out of the history and address bar.
    const token = decodeURIComponent(hash.slice('#enrol='.length));
    history.replaceState(null, '', '/app/#/enrol');
    enrolView(token);
    return markNav('enrol');
  }
  const [name, arg] = hash.replace(/^#\/?/, '').split('/');
  const page = name || 'today';
  if (!OPEN.has(page) && !signedIn()) { location.hash = '#/signin'; return; }
  markNav(page);
  try {
    switch (page) {
      case 'enrol': return enrolView(null);
      case 'signin': return signInView();
      case 'consents': return await consentsView();
      case 'capture': return await captureView(arg);
      case 'progress': return await progressView();
      case 'more': return await moreView();
      default: return await todayView();
    }
  } catch (error) {
    if (error instanceof SignedOut) { location.hash = '#/signin'; return; }
    const main = document.getElementById('view');
    main.replaceChildren(h('h1', {}, 'Something went wrong'),
      h('p', {role: 'alert'}, error instanceof TypeError ? 'No connection. This page needs the network; photos you take still wait on this phone.' : error.message),
      h('p', {}, h('a', {href: '#/'}, 'Back to your check-ins')));
    if (error instanceof TypeError) main.append(await waitingSection());
  }
}

function markNav(page) {
  const nav = document.getElementById('nav');
  nav.hidden = OPEN.has(page) || !signedIn();
  for (const link of nav.querySelectorAll('a')) {
    const target = link.getAttribute('href').replace(/^#\/?/, '') || 'today';
    if (target === page) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
}

function showNetwork() { document.getElementById('network').hidden = navigator.onLine; }

window.addEventListener('hashchange', route);
window.addEventListener('online', showNetwork);
window.addEventListener('offline', showNetwork);
queue.onChange(async () => {
  // Keep a visible list of waiting photos current.
  const section = document.getElementById('waiting-section');
  if (section) section.replaceWith(await waitingSection());
});

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/app/sw.js', {scope: '/app/'}).catch(() => {});
}
showNetwork();
route();
if (signedIn()) queue.flush();
// Besides the 'online' event (which a captive portal or a flaky cell never fires), retry now and then.
setInterval(() => { if (navigator.onLine && signedIn()) queue.flush(); }, 30000);
