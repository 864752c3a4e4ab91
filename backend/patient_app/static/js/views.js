// The app's screens. Each view renders into <main> with DOM calls only (no innerHTML of data).
import {api, ApiError, enrol, imageUrl, signIn, signOut} from './api.js';
import {GuidedCapture} from './capture.js';
import * as queue from './queue.js';

//: Version of the consent texts below: recorded with every grant or withdrawal.
export const CONSENT_VERSION = '2026-12-app-1';

export const CONSENTS = [
  {scope: 'clinical_photo', title: 'Photos for your treatment',
    text: 'Your clinic keeps the photos you take in this app and measures your skin in them (redness, ' +
      'pigmentation, texture) to follow your treatment. Only you and your clinic\'s staff can see them. ' +
      'You need this to take photos. If you withdraw it, your photos are deleted and you cannot take new ones.'},
  {scope: 'research', title: 'Research',
    text: 'Your measurements may be used in research studies your clinic takes part in, without your name ' +
      'or anything else that identifies you. Your care is the same whether you agree or not.'},
  {scope: 'research_region_patches', title: 'Small skin patches for research',
    text: 'Small squares of skin from your cheeks and forehead (no eyes, not your whole face) may be given ' +
      'to researchers, without your name. Only used if you also agree to research.'},
  {scope: 'marketing', title: 'Before and after photos for publicity',
    text: 'Your clinic may show your before and after photos in its advertising, where people might ' +
      'recognise you. Saying no changes nothing about your treatment.'},
];

const GAIS = {1: 'Very much improved', 2: 'Much improved', 3: 'Improved', 4: 'No change', 5: 'Worse'};
const EVENT_TYPES = {erythema: 'Redness', swelling: 'Swelling', itching: 'Itching', pain: 'Pain', bruising: 'Bruising',
  infection: 'Infection', hyperpigmentation: 'Darker patches', hypopigmentation: 'Lighter patches',
  acneiform: 'Spots or acne', other: 'Something else'};
const SEVERITIES = {mild: 'Mild', moderate: 'Moderate', severe: 'Severe'};

// ------------------------------------------------------------------ helpers

/** Create an element: h('p', {class: 'x'}, 'text', child...). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function announce(text) { document.getElementById('announce').textContent = text; }

function render(...children) {
  const main = document.getElementById('view');
  main.replaceChildren(...children);
  main.focus();
  const heading = main.querySelector('h1');
  document.title = heading ? `${heading.textContent} · skintrack` : 'skintrack';
}

const pretty = (name) => name.replace(/_/g, ' ');
const day = (iso) => new Date(`${iso}T12:00:00`).toLocaleDateString(undefined, {day: 'numeric', month: 'long', year: 'numeric'});
export function localDate() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;
}

/** A labelled input with its error slot; returns the wrapper (input: .input). */
function field(label, attrs) {
  const id = `f-${attrs.name}`;
  const error = h('p', {class: 'field-error', id: `${id}-error`, hidden: true});
  const input = h(attrs.tag || 'input', {id, 'aria-describedby': `${id}-error`, ...attrs, tag: null});
  const wrapper = h('div', {class: 'field'}, h('label', {for: id}, label), input, error);
  wrapper.input = input;
  return wrapper;
}

/** Show a problem's field errors next to their fields, the rest as the form's message. */
function showProblem(form, error) {
  form.querySelectorAll('.field-error').forEach((p) => { p.hidden = true; p.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((i) => i.removeAttribute('aria-invalid'));
  const formError = form.querySelector('.form-error');
  let general = [];
  if (error instanceof ApiError) {
    for (const [name, messages] of Object.entries(error.fieldErrors)) {
      const slot = form.querySelector(`#f-${name}-error`);
      if (slot) {
        slot.textContent = messages.join(' ');
        slot.hidden = false;
        form.querySelector(`#f-${name}`).setAttribute('aria-invalid', 'true');
      } else general = general.concat(messages);
    }
    if (!general.length && !Object.keys(error.fieldErrors).length) general.push(error.message);
  } else {
    general.push(error instanceof TypeError ? 'No connection. Try again when you are online.' : String(error.message || error));
  }
  formError.textContent = general.join(' ');
  formError.hidden = !general.length;
}

function formError() { return h('p', {class: 'form-error', role: 'alert', hidden: true}); }

// Who is signed in: the patient record and its courses (fetched once per page load).
let mine = null;
export function forget() { mine = null; }
async function me() {
  if (!mine) {
    const patient = await api('/me/patient');
    const courses = await api(`/patients/${patient.id}/courses`);
    mine = {patient, courses: courses.items || courses};
  }
  return mine;
}

// ------------------------------------------------------------------ enrol and sign in

export function enrolView(token) {
  const code = token ? null : field('One-time code from your clinic', {name: 'code', autocomplete: 'one-time-code',
    autocapitalize: 'characters', required: true, placeholder: 'XXXX-XXXX-XXXX'});
  const email = field('Your email', {name: 'email', type: 'email', autocomplete: 'email', required: true});
  const password = field('Choose a password (at least 10 characters)', {name: 'password', type: 'password',
    autocomplete: 'new-password', minlength: 10, required: true});
  const again = field('The same password again', {name: 'password_again', type: 'password', autocomplete: 'new-password', required: true});
  const form = h('form', {novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (password.input.value !== again.input.value) {
      showProblem(form, new ApiError(422, {errors: {password_again: ['The two passwords differ.']}}));
      return;
    }
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      await enrol(token ? {token} : {code: code.input.value}, email.input.value, password.input.value);
      forget();
      location.hash = '#/consents';
    } catch (error) {
      showProblem(form, error);
    } finally { button.disabled = false; }
  }}, code, email, password, again, formError(), h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Create my account')));
  render(
    h('h1', {}, 'Welcome to skintrack'),
    h('p', {}, token ? 'Your clinic invited you. Choose the email and password you will sign in with.'
      : 'Type the code your clinic gave you, then choose the email and password you will sign in with.'),
    form,
    h('p', {}, 'Already have an account? ', h('a', {href: '#/signin'}, 'Sign in')));
}

export function signInView() {
  const email = field('Email', {name: 'email', type: 'email', autocomplete: 'username', required: true});
  const password = field('Password', {name: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const form = h('form', {novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    try {
      await signIn(email.input.value, password.input.value);
      forget();
      location.hash = '#/';
    } catch (error) { showProblem(form, error); }
  }}, email, password, formError(), h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Sign in')));
  render(h('h1', {}, 'Sign in'), form,
    h('p', {}, 'New here? ', h('a', {href: '#/enrol'}, 'Enter the code from your clinic')));
}

// ------------------------------------------------------------------ consents

export async function consentsView() {
  const {patient} = await me();
  const state = await api(`/patients/${patient.id}/consents`);
  const byScope = Object.fromEntries(state.scopes.map((s) => [s.scope, s]));
  const cards = CONSENTS.map(({scope, title, text}) => {
    const current = byScope[scope] || {granted: false};
    const status = current.granted
      ? `You agreed on ${new Date(current.since).toLocaleDateString()} (text version ${current.version}).`
      : current.since ? `You withdrew on ${new Date(current.since).toLocaleDateString()}.` : 'You have not agreed.';
    const message = h('p', {class: 'form-error', role: 'alert', hidden: true});
    const record = async (action) => {
      try {
        await api(`/patients/${patient.id}/consents`, {method: 'POST', json: {scope, action, version: CONSENT_VERSION},
          headers: {'Idempotency-Key': crypto.randomUUID()}});
        announce(action === 'grant' ? `You agreed: ${title}.` : `You withdrew: ${title}.`);
        await consentsView();
      } catch (error) { message.textContent = error.message; message.hidden = false; }
    };
    let button;
    if (!current.granted) {
      button = h('button', {type: 'button', onclick: () => record('grant'), 'aria-describedby': `c-${scope}`}, 'I agree');
    } else {
      button = h('button', {type: 'button', class: 'danger', 'aria-describedby': `c-${scope}`, onclick: (event) => {
        // Withdrawing photos deletes them: ask once more, in the page.
        if (scope === 'clinical_photo' && event.currentTarget.dataset.confirm !== 'yes') {
          event.currentTarget.dataset.confirm = 'yes';
          event.currentTarget.textContent = 'Yes, withdraw and delete my photos';
          return;
        }
        record('withdraw');
      }}, 'Withdraw');
    }
    return h('section', {class: 'card', 'aria-labelledby': `t-${scope}`, dataset: {scope}},
      h('h2', {id: `t-${scope}`}, title), h('p', {id: `c-${scope}`}, text),
      h('p', {class: current.granted ? 'ok' : 'muted'}, status), message, h('div', {class: 'actions'}, button));
  });
  render(h('h1', {}, 'Your consents'),
    h('p', {}, 'Each one is your choice, and you can change it here at any time.'), ...cards,
    h('p', {}, h('a', {href: '#/', class: 'button secondary'}, 'Continue')));
}

// ------------------------------------------------------------------ today: schedule and waiting photos

function waitingList(items) {
  if (!items.length) return h('p', {class: 'muted', id: 'waiting-none'}, 'No photos are waiting to be sent.');
  return h('ul', {class: 'plain', id: 'waiting'}, items.map((item) => h('li', {dataset: {id: item.id}},
    `Photo taken ${new Date(item.takenAt).toLocaleString()}: `,
    item.state === 'refused' ? h('span', {class: 'bad'}, `not accepted (${item.problem})`)
      : h('span', {}, item.attempts ? `waiting for network (tried ${item.attempts}×)` : 'waiting to be sent'),
    item.state === 'refused' ? h('button', {type: 'button', class: 'secondary', onclick: async () => {
      await queue.discard(item.id);
    }}, 'Remove') : null)));
}

export async function waitingSection() {
  const items = await queue.waiting();
  const section = h('section', {'aria-labelledby': 'waiting-title', id: 'waiting-section'},
    h('h2', {id: 'waiting-title'}, `Waiting to be sent (${items.length})`), waitingList(items),
    items.some((i) => i.state === 'waiting') ? h('div', {class: 'actions'},
      h('button', {type: 'button', class: 'secondary', onclick: () => queue.flush()}, 'Send now')) : null);
  return section;
}

function scheduleItem(item, action) {
  const dates = item.window_opens === item.window_closes ? day(item.window_opens)
    : `${day(item.window_opens)} to ${day(item.window_closes)}`;
  return h('li', {dataset: {milestone: item.name}},
    h('strong', {}, pretty(item.name)), ' ', h('span', {class: `status ${item.status}`}, item.status), h('br'),
    h('span', {class: 'muted'}, item.status === 'completed' ? `Done ${new Date(item.completed_at).toLocaleDateString()}` : dates),
    action ? h('div', {class: 'actions'}, action) : null);
}

export async function todayView() {
  const {patient} = await me();
  const [schedule, consents] = await Promise.all([
    api(`/me/schedule?on=${localDate()}`), api(`/patients/${patient.id}/consents`)]);
  const photosAllowed = consents.scopes.some((s) => s.scope === 'clinical_photo' && s.granted);
  const take = (item) => photosAllowed
    ? h('a', {class: 'button', href: `#/capture/${item.milestone_id}`}, `Take ${pretty(item.name)} photos`) : null;
  const sections = [];
  if (!photosAllowed) {
    sections.push(h('p', {class: 'card'}, 'To take photos, first agree to ',
      h('a', {href: '#/consents'}, 'Photos for your treatment'), '.'));
  }
  for (const [status, title] of [['overdue', 'Overdue'], ['due', 'Due now'], ['upcoming', 'Coming up'], ['completed', 'Done']]) {
    const items = schedule[status] || [];
    if (!items.length) continue;
    sections.push(h('section', {'aria-labelledby': `s-${status}`},
      h('h2', {id: `s-${status}`}, title),
      h('ul', {class: 'plain'}, items.map((item) => scheduleItem(item, status === 'due' || status === 'overdue' ? take(item) : null)))));
  }
  if (!sections.length) sections.push(h('p', {}, 'Nothing is planned yet. Your clinic will set up your check-ins.'));
  render(h('h1', {}, 'Your check-ins'), ...sections, await waitingSection());
}

// ------------------------------------------------------------------ guided capture

async function baselinePhoto(patient, courseId, view) {
  const photos = await api(`/patients/${patient.id}/photos?course_id=${courseId}`);
  return (photos.items || []).find((p) => p.milestone_name === 'baseline' && p.view === view && p.counts);
}

export async function captureView(milestoneId) {
  const {patient, courses} = await me();
  const schedule = await api(`/me/schedule?on=${localDate()}`);
  const item = ['due', 'overdue', 'upcoming', 'completed'].flatMap((s) => schedule[s] || [])
    .find((i) => i.milestone_id === milestoneId);
  if (!item) { render(h('h1', {}, 'Check-in not found'), h('p', {}, h('a', {href: '#/'}, 'Back to your check-ins'))); return; }
  const course = courses.find((c) => c.id === item.course_id) || {};
  // Views and repeat captures as the course asks (fields a course may carry; else one front photo).
  const views = Array.isArray(course.capture_views) && course.capture_views.length ? course.capture_views : ['front'];
  await captureStep(patient, item, views, 0, {course});
}

const VIEW_WORDS = {front: 'facing the camera', left: 'turned so your left cheek faces the camera',
  right: 'turned so your right cheek faces the camera'};

async function captureStep(patient, item, views, index, options) {
  const view = views[index];
  const followUp = item.day_offset > 0;
  let ghost = null;
  if (followUp) {
    try {
      const baseline = await baselinePhoto(patient, item.course_id, view);
      if (baseline) ghost = await imageUrl(`/photos/${baseline.id}/image`);
    } catch { /* offline: no ghost, the oval still guides */ }
  }
  const hints = h('p', {class: 'hints', role: 'status', 'aria-live': 'polite', id: 'hints'}, 'Starting the camera…');
  const camera = h('div', {class: 'camera', id: 'camera'},
    h('video', {muted: true, playsinline: true, autoplay: true, 'aria-label': 'Camera preview (mirrored)'}),
    ghost ? h('img', {class: 'ghost', src: ghost, alt: '', id: 'ghost'}) : null,
    h('div', {class: 'oval', 'aria-hidden': 'true'}),
    h('div', {class: 'countdown', 'aria-live': 'assertive'}));
  const root = h('div', {class: 'capture'}, camera, hints);
  const capture = new GuidedCapture(root, {
    onPhoto: (blob, conditions) => uploadStep(patient, item, views, index, blob, conditions, options),
    onError: (message) => { hints.textContent = message; },
  });
  const ghostToggle = ghost ? h('label', {class: 'switch'}, h('input', {type: 'checkbox', checked: true, id: 'ghost-toggle',
    onchange: (event) => { camera.querySelector('.ghost').hidden = !event.target.checked; }}),
  'Show my first photo as a guide') : null;
  render(
    h('h1', {}, `${pretty(item.name)} photo${views.length > 1 ? ` ${index + 1} of ${views.length}` : ''}` +
      (options.repeatOf ? ' (once more)' : '')),
    options.repeatOf ? h('p', {}, 'Your clinic asks for the same photo a second time: lower the phone, then frame ' +
      'your face again. Comparing the two shows how precise the measurements are.') : null,
    h('p', {}, `Face a window in daylight, no make-up if you can, hair off your face, ${VIEW_WORDS[view] || ''}. ` +
      (followUp ? 'Line your face up with the faint first photo. ' : '') +
      'Fill the oval; the photo is taken after a countdown when everything is right.'),
    root, ghostToggle,
    h('div', {class: 'actions'},
      h('button', {type: 'button', class: 'secondary shutter', onclick: () => capture.capture()}, 'Take photo now'),
      h('a', {class: 'button secondary', href: '#/', onclick: () => capture.stop()}, 'Cancel')));
  window.addEventListener('hashchange', () => capture.stop(), {once: true});
  await capture.start();
}

async function uploadStep(patient, item, views, index, blob, conditions, options) {
  const view = views[index];
  const query = {course_id: item.course_id, milestone_id: item.milestone_id, view,
    captured_at: new Date().toISOString(), capture_conditions: JSON.stringify(conditions)};
  if (options.repeatOf) query.repeat_of_id = options.repeatOf;
  const taken = URL.createObjectURL(blob);
  render(h('h1', {}, 'Checking your photo…'), h('p', {role: 'status'}, 'Sending the photo to your clinic.'));
  const waitingItem = await queue.enqueue(patient.id, query, blob);
  await queue.flush();
  const outcome = queue.outcome(waitingItem.id) || {offline: true};
  const retake = h('button', {type: 'button', id: 'retake', onclick: () => captureStep(patient, item, views, index, options)}, 'Retake');
  const nextOptions = {course: options.course};
  let next = index + 1 < views.length
    ? h('button', {type: 'button', onclick: () => captureStep(patient, item, views, index + 1, nextOptions)}, 'Next view')
    : h('a', {class: 'button', href: '#/progress'}, 'See my progress');
  const preview = h('figure', {class: 'result'}, h('img', {src: taken, alt: `The ${view} photo you just took`}));
  if (outcome.photo) {
    const quality = outcome.photo.quality;
    if (quality.ok) {
      announce('Photo accepted.');
      if (options.course && options.course.repeat_capture && !options.repeatOf) {
        // The repeatability protocol: the same photo again, minutes later, reframed.
        next = h('button', {type: 'button', id: 'repeat', onclick: () => captureStep(patient, item, views, index,
          {...options, repeatOf: outcome.photo.id})}, 'Take it once more');
      }
      // Warnings leave the photo usable but say what was not measured (a beauty filter, say).
      const warnings = quality.warnings || [];
      const notes = warnings.length
        ? [h('p', {id: 'quality-warnings-lead'}, 'Good to know:'),
          h('ul', {id: 'warnings'}, warnings.map((w) => h('li', {dataset: {code: w.code}}, w.message)))]
        : [];
      render(h('h1', {}, 'Photo accepted'), h('p', {class: 'ok', id: 'quality-ok'}, 'Thank you: this photo can be measured.'),
        ...notes, preview, h('div', {class: 'actions'}, next, h('a', {class: 'button secondary', href: '#/'}, 'Back to check-ins')));
    } else {
      announce('This photo cannot be used. Please retake it.');
      render(h('h1', {}, 'Please retake this photo'),
        h('p', {class: 'bad', id: 'quality-refused'}, 'This photo cannot be measured:'),
        h('ul', {id: 'problems'}, quality.problems.map((p) => h('li', {dataset: {code: p.code}}, p.message))),
        preview, h('div', {class: 'actions'}, retake, h('a', {class: 'button secondary', href: '#/'}, 'Later')));
    }
  } else if (outcome.problem) {
    render(h('h1', {}, 'The photo was not accepted'), h('p', {class: 'bad'}, outcome.problem), preview,
      h('div', {class: 'actions'}, retake));
  } else {
    announce('Saved on this phone; it will be sent when you are online.');
    render(h('h1', {}, 'Saved on this phone'),
      h('p', {id: 'queued'}, 'There is no connection right now. The photo waits on this phone and is sent automatically when you are online.'),
      preview, await waitingSection(), h('div', {class: 'actions'}, h('a', {class: 'button', href: '#/'}, 'Back to check-ins')));
  }
}

// ------------------------------------------------------------------ progress

async function beforeAfter(patient, course) {
  const photos = (await api(`/patients/${patient.id}/photos?course_id=${course.id}`)).items || [];
  const counting = photos.filter((p) => p.counts && p.view === 'front' && p.milestone_name);
  const before = counting.find((p) => p.milestone_name === 'baseline');
  const after = counting.filter((p) => p !== before).sort((a, b) => b.captured_at.localeCompare(a.captured_at))[0];
  if (!before || !after) return h('p', {class: 'muted'}, 'Your before and after photos appear here after your first check-in.');
  const [beforeUrl, afterUrl] = await Promise.all([imageUrl(`/photos/${before.id}/image`), imageUrl(`/photos/${after.id}/image`)]);
  return h('div', {class: 'pair', id: 'before-after'},
    h('figure', {}, h('img', {src: beforeUrl, alt: `Your face at the start, ${day(before.capture_date)}`}), h('figcaption', {}, `Start, ${day(before.capture_date)}`)),
    h('figure', {}, h('img', {src: afterUrl, alt: `Your face at ${pretty(after.milestone_name)}, ${day(after.capture_date)}`}),
      h('figcaption', {}, `${pretty(after.milestone_name)}, ${day(after.capture_date)}`)));
}

function ratingForm(course, schedule) {
  const milestones = (schedule.completed || []).filter((m) => m.course_id === course.id && m.day_offset > 0);
  if (!milestones.length) return h('p', {class: 'muted'}, 'You can rate your result after your first follow-up check-in.');
  const milestone = field('Check-in', {name: 'milestone_id', tag: 'select'});
  milestones.forEach((m) => milestone.input.append(h('option', {value: m.milestone_id}, pretty(m.name))));
  const gais = h('fieldset', {}, h('legend', {}, 'Compared with before the treatment, your skin looks:'),
    Object.entries(GAIS).map(([value, label]) => h('label', {class: 'switch'},
      h('input', {type: 'radio', name: 'gais', value, required: true}), label)),
    h('p', {class: 'field-error', id: 'f-gais-error', hidden: true}));
  const satisfaction = field('How satisfied are you? (0 = not at all, 10 = completely)', {name: 'satisfaction', tag: 'select'});
  for (let n = 10; n >= 0; n -= 1) satisfaction.input.append(h('option', {value: n}, String(n)));
  const form = h('form', {novalidate: true, id: 'rating-form', onsubmit: async (event) => {
    event.preventDefault();
    const chosen = form.querySelector('input[name=gais]:checked');
    try {
      if (!chosen) throw new ApiError(422, {errors: {gais: ['Choose one answer.']}});
      await api(`/courses/${course.id}/assessments`, {method: 'POST', headers: {'Idempotency-Key': crypto.randomUUID()},
        json: {milestone_id: milestone.input.value, gais: Number(chosen.value), satisfaction: Number(satisfaction.input.value)}});
      announce('Thank you, your rating is saved.');
      await progressView();
    } catch (error) { showProblem(form, error); }
  }}, milestone, gais, satisfaction, formError(), h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Save my rating')));
  return form;
}

function adverseEventForm(course) {
  const type = field('What happened?', {name: 'event_type', tag: 'select'});
  Object.entries(EVENT_TYPES).forEach(([value, label]) => type.input.append(h('option', {value}, label)));
  const severity = field('How bad is it?', {name: 'severity', tag: 'select'});
  Object.entries(SEVERITIES).forEach(([value, label]) => severity.input.append(h('option', {value}, label)));
  const onset = field('Since when?', {name: 'onset_date', type: 'date', value: localDate(), max: localDate(), required: true});
  const notes = field('Anything else your clinic should know (optional)', {name: 'notes', tag: 'textarea', rows: 3, maxlength: 5000});
  const form = h('form', {novalidate: true, id: 'adverse-form', onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api(`/courses/${course.id}/adverse-events`, {method: 'POST', headers: {'Idempotency-Key': crypto.randomUUID()},
        json: {event_type: type.input.value, severity: severity.input.value, onset_date: onset.input.value, notes: notes.input.value}});
      form.replaceChildren(h('p', {class: 'ok', role: 'status'}, 'Thank you. Your clinic has been told. If it is severe, call your clinic now.'));
    } catch (error) { showProblem(form, error); }
  }}, type, severity, onset, notes, formError(), h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Tell my clinic')));
  return form;
}

export async function progressView() {
  const {patient, courses} = await me();
  const summary = await api('/me/summary');
  const course = courses.find((c) => c.id === summary.course_id);
  if (!course) { render(h('h1', {}, 'Your progress'), h('p', {}, 'Your clinic has not started a treatment course yet.')); return; }
  const schedule = await api(`/me/schedule?on=${localDate()}`);
  const words = summary.results.length
    ? h('ul', {id: 'summary-words'}, summary.results.map((r) => h('li', {}, r.text)))
    : h('p', {id: 'summary-words'}, 'Your results appear here after your first follow-up photo has been measured.');
  const charts = await Promise.all(Object.entries(summary.charts || {}).map(async ([measure, url]) => {
    const said = summary.results.filter((r) => r.measure === measure).map((r) => r.text).join(' ');
    try {
      const src = await imageUrl(url);
      return h('figure', {class: 'chart'}, h('img', {src, alt: `Chart of your ${pretty(measure)} over time. ${said}`.trim()}),
        h('figcaption', {}, `${pretty(measure)} over time`));
    } catch { return null; }
  }));
  const next = summary.next_milestone;
  const own = (await api(`/courses/${course.id}/assessments`)).items || [];
  render(
    h('h1', {}, 'Your progress'),
    next ? h('p', {}, `Next check-in: ${pretty(next.name)}, ${day(next.window_opens)} to ${day(next.window_closes)}.`) : null,
    h('h2', {}, 'In words'), words,
    h('h2', {}, 'Before and after'), await beforeAfter(patient, course),
    charts.some(Boolean) ? h('h2', {}, 'Charts') : null, ...charts.filter(Boolean),
    h('h2', {}, 'Your own rating'),
    own.filter((a) => a.rater_role === 'patient').length ? h('ul', {class: 'plain', id: 'own-ratings'},
      own.filter((a) => a.rater_role === 'patient').map((a) => h('li', {},
        `${GAIS[a.gais]}${a.satisfaction !== null && a.satisfaction !== undefined ? `, satisfaction ${a.satisfaction}/10` : ''}`)))
      : null,
    ratingForm(course, schedule),
    h('h2', {}, 'Report a problem with your skin'), adverseEventForm(course));
}

// ------------------------------------------------------------------ more: calendar, install, sign out

let installPrompt = null;
window.addEventListener('beforeinstallprompt', (event) => { event.preventDefault(); installPrompt = event; });

export async function moreView() {
  const feed = await api('/me/calendar-feed');
  const calendar = h('div', {id: 'calendar'});
  const showFeed = (state, created) => {
    calendar.replaceChildren(
      h('p', {}, state.active
        ? `Your calendar feed is on${state.last_fetched_at ? `; last read by your calendar ${new Date(state.last_fetched_at).toLocaleString()}` : ''}.`
        : 'Get each check-in window in your phone\'s calendar, with a reminder. It shows only "Skin photo check-in" and dates.'),
      created ? h('p', {}, h('a', {class: 'button', id: 'webcal', href: created.webcal_url}, 'Open in my calendar app')) : null,
      created ? h('p', {class: 'muted'}, 'Or add this address to your calendar by hand (keep it private): ',
        h('code', {id: 'feed-url'}, created.url)) : null,
      h('div', {class: 'actions'},
        h('button', {type: 'button', id: 'feed-create', class: state.active ? 'secondary' : '', onclick: async () => {
          const made = await api('/me/calendar-feed', {method: 'POST'});
          showFeed(made, made);
        }}, state.active ? 'New calendar address' : 'Add check-ins to my calendar'),
        state.active ? h('button', {type: 'button', class: 'danger', id: 'feed-stop', onclick: async () => {
          await api('/me/calendar-feed', {method: 'DELETE'});
          showFeed({active: false}, null);
        }}, 'Stop the calendar feed') : null));
  };
  showFeed(feed, null);
  render(
    h('h1', {}, 'More'),
    h('h2', {}, 'Calendar reminders'), calendar,
    h('h2', {}, 'Install the app'),
    h('p', {}, 'Add skintrack to your home screen: in your browser\'s menu choose "Install app" or "Add to Home Screen". It then opens like an app and works without network for taking photos.'),
    installPrompt ? h('div', {class: 'actions'}, h('button', {type: 'button', onclick: () => installPrompt.prompt()}, 'Install')) : null,
    await waitingSection(),
    h('h2', {}, 'Account'),
    h('div', {class: 'actions'}, h('button', {type: 'button', class: 'secondary', id: 'sign-out', onclick: async () => {
      await signOut();
      forget();
      location.hash = '#/signin';
    }}, 'Sign out')));
}
