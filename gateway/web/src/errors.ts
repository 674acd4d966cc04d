// What a person reads for each refusal the server can answer (docs/api.md): socket refusal codes
// and HTTP answers.

export type Code = 'bad_request' | 'not_found' | 'forbidden' | 'conflict' | 'rate_limited' | 'internal' | 'gone' | 'timeout' | 'offline';

const GENERIC: Record<Code, string> = {
  bad_request: 'The server could not accept that request.',
  not_found: 'That chat, message or person no longer exists.',
  forbidden: 'You are not allowed to do that.',
  conflict: 'That has already been done.',
  rate_limited: 'Too many requests: wait a moment and try again.',
  internal: 'The server could not do that just now. Try again.',
  gone: 'Too much has happened since you were last here; the chat list was reloaded.',
  timeout: 'The server did not answer in time. Check your connection and try again.',
  offline: 'You are offline: it will be sent when the connection is back.',
};

/** The text for a socket refusal, with the server's own explanation where it gives one. */
export function refusalText(code: string | undefined, message?: string, action?: string): string {
  const known = (code && code in GENERIC ? code : 'internal') as Code;
  let text = GENERIC[known];
  if (known === 'forbidden' && action && ADMIN_ACTIONS.has(action)) text = 'Only the group admin can do that.';
  if (known === 'forbidden' && action === 'leave-grp') text = 'The admin cannot leave the group: hand over admin first, or delete it.';
  if (known === 'conflict' && action === 'add-member') text = 'That person is already in the group.';
  if (known === 'bad_request' && action === 'create-personal-chat') text = 'You cannot start a chat with yourself: use Notes.';
  const detail = message && message.trim() && !text.includes(message) ? ` (${message.trim()})` : '';
  return text + detail;
}

const ADMIN_ACTIONS = new Set(['add-member', 'kickout', 'change-admin', 'delete-grp']);

export interface HttpAnswer {
  status: number;
  success?: number;
  message?: string;
  retryAfter?: number;
}

/** The text for an HTTP refusal of one of the account routes. */
export function httpText(route: string, answer: HttpAnswer): string {
  const { status, message } = answer;
  if (status === 0) return 'Cannot reach the server. Check your connection and try again.';
  if (status === 429) {
    const wait = answer.retryAfter ? ` in ${answer.retryAfter} s` : ' in a minute';
    return `Too many attempts from this address: try again${wait}.`;
  }
  if (status === 413 && route !== 'upload') return 'That is too long.';
  if (status === 415) return 'The request was refused by the server (wrong format).';
  if (status >= 500) return 'The server could not do that just now. Try again in a moment.';
  switch (route) {
    case 'login':
      if (status === 401) return 'Wrong e-mail or password.';
      if (status === 403 || answer.success === -2) return 'This e-mail address is not verified yet: enter the code we mailed you.';
      break;
    case 'signup':
      if (status === 409) return 'An account with this e-mail already exists: sign in instead.';
      break;
    case 'verify':
      if (status === 400) return 'That code is wrong, used or expired (codes last 10 minutes; after 5 wrong tries ask for a new one).';
      break;
    case 'refresh':
      if (status === 401) return 'Your session has ended. Sign in again.';
      break;
    case 'upload':
      if (status === 413) return 'That file is too large to send.';
      if (status === 400) return 'That file name cannot be used: rename the file and try again.';
      break;
  }
  if (status === 400) return message ? `Please check the form: ${message}` : 'Please check the form.';
  return message || `Unexpected answer (${status}).`;
}
