// mailpit's HTTP API (GET /api/v1/messages, GET /api/v1/message/{ID}): the emails the
// notifications service really sent over SMTP.
import { mailpitURL } from './stack';

export interface MessageSummary {
  ID: string;
  Subject: string;
  To: { Name: string; Address: string }[];
  Created: string;
  Snippet: string;
}

export interface Message extends MessageSummary {
  Text: string;
  HTML: string;
}

async function get<T>(route: string): Promise<T> {
  const res = await fetch(mailpitURL() + route, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`mailpit GET ${route}: ${res.status}`);
  return (await res.json()) as T;
}

/** Every message mailpit holds, newest first. */
export async function messages(): Promise<MessageSummary[]> {
  const page = await get<{ total: number; messages: MessageSummary[] }>('/api/v1/messages?limit=500');
  return page.messages;
}

/** The messages to address whose subject matches. */
export async function messagesTo(address: string, subject: RegExp): Promise<MessageSummary[]> {
  return (await messages()).filter((m) => subject.test(m.Subject) && m.To.some((t) => t.Address.toLowerCase() === address.toLowerCase()));
}

export function message(id: string): Promise<Message> {
  return get<Message>(`/api/v1/message/${encodeURIComponent(id)}`);
}

/** The href of every link of an email's HTML body. */
export function links(m: Message): string[] {
  return [...m.HTML.matchAll(/href="([^"]+)"/g)].map((x) => x[1]!.replaceAll('&amp;', '&'));
}
