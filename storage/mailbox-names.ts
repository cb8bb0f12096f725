/**
 * Default names of the special-use mailboxes in the user's language (WildDuck ships such translations in
 * `lib/translations`; these are the usual client names in each language): `POST /users` with `language` creates Drafts, Sent, Trash and Junk under these names.
 * An unknown or missing language falls back to the names from config (`users.mailboxes`). Region subtags are
 * ignored (`pt-BR` → `pt`); the lookup is case-insensitive.
 */
/** The names of the four special-use mailboxes (config `users.mailboxes` has this shape). */
export interface SpecialMailboxNames {
  drafts: string;
  sent: string;
  trash: string;
  junk: string;
}

export const MAILBOX_TRANSLATIONS: Readonly<Record<string, SpecialMailboxNames>> = {
  en: { drafts: 'Drafts', sent: 'Sent Mail', trash: 'Trash', junk: 'Junk' },
  et: { drafts: 'Mustandid', sent: 'Saadetud kirjad', trash: 'Prügikast', junk: 'Rämpsposti kaust' },
  de: { drafts: 'Entwürfe', sent: 'Gesendete Objekte', trash: 'Papierkorb', junk: 'Spam' },
  fr: { drafts: 'Brouillons', sent: 'Messages envoyés', trash: 'Corbeille', junk: 'Indésirables' },
  es: { drafts: 'Borradores', sent: 'Enviados', trash: 'Papelera', junk: 'Spam' },
  pt: { drafts: 'Rascunhos', sent: 'Enviados', trash: 'Lixeira', junk: 'Spam' },
  it: { drafts: 'Bozze', sent: 'Posta inviata', trash: 'Cestino', junk: 'Posta indesiderata' },
  nl: { drafts: 'Concepten', sent: 'Verzonden items', trash: 'Prullenbak', junk: 'Ongewenste e-mail' },
  pl: { drafts: 'Wersje robocze', sent: 'Wysłane', trash: 'Kosz', junk: 'Spam' },
  fi: { drafts: 'Luonnokset', sent: 'Lähetetyt', trash: 'Roskakori', junk: 'Roskaposti' },
  sv: { drafts: 'Utkast', sent: 'Skickat', trash: 'Papperskorgen', junk: 'Skräppost' },
  ru: { drafts: 'Черновики', sent: 'Отправленные', trash: 'Корзина', junk: 'Спам' },
  lv: { drafts: 'Melnraksti', sent: 'Nosūtītās vēstules', trash: 'Miskaste', junk: 'Mēstules' },
  lt: { drafts: 'Juodraščiai', sent: 'Išsiųsti laiškai', trash: 'Šiukšlinė', junk: 'Brukalas' },
  uk: { drafts: 'Чернетки', sent: 'Надіслані', trash: 'Кошик', junk: 'Спам' },
};

/** Languages with built-in names, for the API reference. */
export const MAILBOX_LANGUAGES: readonly string[] = Object.keys(MAILBOX_TRANSLATIONS);

/**
 * Names for a new user's special-use mailboxes: the translation for `language` (or the config names when there is
 * none), then any explicit `overrides` (WildDuck's `mailboxes` field) on top.
 */
export function specialMailboxNames(
  configured: SpecialMailboxNames,
  language?: string | null,
  overrides?: Partial<SpecialMailboxNames>,
): SpecialMailboxNames {
  const code = (language ?? '').trim().toLowerCase().split(/[-_]/)[0] ?? '';
  const base = (code && Object.hasOwn(MAILBOX_TRANSLATIONS, code) ? MAILBOX_TRANSLATIONS[code] : undefined) ?? configured;
  const out = { ...base };
  for (const key of ['drafts', 'sent', 'trash', 'junk'] as const) {
    const name = overrides?.[key]?.trim();
    if (name) out[key] = name;
  }
  return out;
}
