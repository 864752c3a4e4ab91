// Photos waiting to be uploaded, kept in IndexedDB so they survive no network, a closed app
// and a restarted phone. Each photo gets its Idempotency-Key when it is taken and keeps it on
// every retry: if an upload reached the server but its answer was lost, the retry gets the
// stored answer instead of a second photo.
import {api, ApiError, SignedOut} from './api.js';

const DB_NAME = 'skintrack-app';
const STORE = 'uploads';
const listeners = new Set();

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, {keyPath: 'id'});
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, action) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = action(tx.objectStore(STORE));
    tx.oncomplete = () => { db.close(); resolve(result && 'result' in result ? result.result : undefined); };
    tx.onerror = () => { db.close(); reject(tx.error); };
  });
}

export const waiting = () => run('readonly', (store) => store.getAll());
const put = (item) => run('readwrite', (store) => store.put(item));
export const discard = async (id) => { await run('readwrite', (store) => store.delete(id)); changed(); };

function changed() { listeners.forEach((listener) => listener()); }
export function onChange(listener) { listeners.add(listener); return () => listeners.delete(listener); }

/** Keep a photo for upload: `query` is the upload's metadata (course_id, milestone_id, view ...). */
export async function enqueue(patientId, query, blob) {
  const item = {id: crypto.randomUUID(), patientId, query, blob, type: blob.type || 'image/jpeg',
    takenAt: new Date().toISOString(), attempts: 0, state: 'waiting', problem: null};
  await put(item);
  changed();
  return item;
}

async function send(item) {
  const params = new URLSearchParams(item.query);
  return api(`/patients/${item.patientId}/photos?${params}`, {
    method: 'POST', body: item.blob, contentType: item.type, headers: {'Idempotency-Key': item.id}});
}

/** What happened to each item: {photo} when stored, {problem} when refused, {offline} otherwise. */
const outcomes = new Map();
export function outcome(id) { return outcomes.get(id); }

let flushing = null;

/** Upload every waiting photo once, oldest first; network failures leave them waiting. */
export function flush() {
  if (!flushing) flushing = flushAll().finally(() => { flushing = null; });
  return flushing;
}

async function flushAll() {
  const items = (await waiting()).filter((item) => item.state === 'waiting')
    .sort((a, b) => a.takenAt.localeCompare(b.takenAt));
  for (const item of items) {
    try {
      const photo = await send(item);
      outcomes.set(item.id, {photo});
      await run('readwrite', (store) => store.delete(item.id));
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && ![408, 425, 429].includes(error.status)) {
        // Refused for good (e.g. not an image, consent withdrawn): keep it visible, stop retrying.
        item.state = 'refused';
        item.problem = error.problem.detail || error.message;
        outcomes.set(item.id, {problem: item.problem});
        await put(item);
      } else if (error instanceof SignedOut) {
        break;
      } else {
        item.attempts += 1;
        outcomes.set(item.id, {offline: true});
        await put(item);
        changed();
        break;  // the network is down: try again when it is back
      }
    }
    changed();
  }
}

window.addEventListener('online', () => { flush(); });
