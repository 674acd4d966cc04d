// The account routes (docs/api.md, "HTTP"). Tokens come back in the body and as HttpOnly
// cookies; this client keeps only the short-lived access token, in memory, and refreshes with the
// cookie, so no refresh token is ever readable by script.

import type { HttpAnswer } from './errors';

export interface Answer extends HttpAnswer {
  body: Record<string, unknown>;
}

async function call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: object, token?: string): Promise<Answer> {
  try {
    const headers: Record<string, string> = body ? { 'content-type': 'application/json', accept: 'application/json' } : { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers,
      body: body ? JSON.stringify(body) : undefined,
    });
    let parsed: Record<string, unknown> = {};
    try {
      parsed = (await response.json()) as Record<string, unknown>;
    } catch {
      // An empty or non-JSON body: the status says enough.
    }
    const retry = Number(response.headers.get('retry-after'));
    return {
      status: response.status,
      success: typeof parsed.success === 'number' ? parsed.success : undefined,
      message: typeof parsed.message === 'string' ? parsed.message : undefined,
      retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined,
      body: parsed,
    };
  } catch {
    return { status: 0, body: {} };
  }
}

export const ok = (a: Answer) => a.status === 200 && a.success === 1;

export const signup = (name: string, email: string, password: string) => call('POST', '/signup', { name, email, password });
export const login = (email: string, password: string) => call('POST', '/login', { email, password });
export const resend = (email: string) => call('POST', '/resend', { email });
export const logout = () => call('POST', '/logout');
/** Spends the refresh cookie for a new pair; the new access token is in the body. */
export const refresh = () => call('POST', '/refresh');
export const verify = (email: string, code: string) =>
  call('GET', `/verify?${new URLSearchParams({ email, token: code, source: 'app' })}`);

export const forgotPassword = (email: string) => call('POST', '/password/forgot', { email });
export const resetPassword = (email: string, token: string, password: string) =>
  call('POST', '/password/reset', { email, token, password });
export const sessions = (access?: string) => call('GET', '/sessions', undefined, access);
export const endSession = (id: string, access?: string) => call('DELETE', `/sessions/${encodeURIComponent(id)}`, undefined, access);

/** Uploads one file (`POST /files`): streamed as the body, named by `?name=`. */
export async function upload(file: File, access?: string): Promise<Answer> {
  try {
    const headers: Record<string, string> = { 'content-type': file.type || 'application/octet-stream', accept: 'application/json' };
    if (access) headers.authorization = `Bearer ${access}`;
    const name = file.name.slice(0, 255);
    const response = await fetch(`/files?${new URLSearchParams({ name })}`, { method: 'POST', credentials: 'same-origin', headers, body: file });
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    return { status: response.status, success: typeof body.success === 'number' ? body.success : undefined, body };
  } catch {
    return { status: 0, body: {} };
  }
}

/** One open session of the user, as `GET /sessions` lists it. */
export interface SessionInfo {
  id: string;
  current: boolean;
  createdAt: string;
  lastUsedAt: string;
  userAgent: string;
  ip: string;
}

/** The sessions of a `GET /sessions` body: the current one first, then the most recently used. */
export function sessionsOf(body: Record<string, unknown>): SessionInfo[] {
  const listed = Array.isArray(body.Sessions) ? (body.Sessions as Record<string, unknown>[]) : [];
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  return listed
    .filter((s) => s && typeof s.Id === 'string')
    .map((s) => ({
      id: String(s.Id),
      current: s.Current === true,
      createdAt: text(s.CreatedAt),
      lastUsedAt: text(s.LastUsedAt),
      userAgent: text(s.UserAgent) || 'Unknown browser or app',
      ip: text(s.Ip),
    }))
    .sort((a, b) => Number(b.current) - Number(a.current) || b.lastUsedAt.localeCompare(a.lastUsedAt));
}

/** Seconds since the epoch at which a JWT expires (0 when unreadable). */
export function expiry(token: string): number {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : 0;
  } catch {
    return 0;
  }
}
