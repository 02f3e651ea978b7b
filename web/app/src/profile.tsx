import { CharlaError, type Curriculum, type ProfileData, type ProfileUpdate } from "@charla/client";
import { useEffect, useState } from "preact/hooks";
import { countries } from "./countries.gen";
import { fullName, lastSeenText } from "./format";
import type { State, Store } from "./store";

type SectionName = keyof Curriculum;
type FieldKind = "text" | "textarea" | "date" | "url" | "level" | "country" | "proficiency";
type Item = Record<string, string | number | undefined>;

interface FieldDef {
  key: string;
  label: string;
  kind: FieldKind;
  required?: boolean;
}

interface SectionDef {
  name: SectionName;
  title: string;
  noun: string;
  /** The field that names an item in lists and labels. */
  headline: string;
  fields: FieldDef[];
}

/** The six curriculum sections of PROTOCOL.md §6 and their fields. */
const sections: SectionDef[] = [
  {
    name: "experience",
    title: "Experience",
    noun: "experience",
    headline: "position",
    fields: [
      { key: "position", label: "Position", kind: "text", required: true },
      { key: "company", label: "Company", kind: "text", required: true },
      { key: "description", label: "Description", kind: "textarea" },
      { key: "startDate", label: "Start date", kind: "date" },
      { key: "endDate", label: "End date (empty while current)", kind: "date" },
      { key: "countryId", label: "Country", kind: "country" },
    ],
  },
  {
    name: "education",
    title: "Education",
    noun: "education",
    headline: "institution",
    fields: [
      { key: "institution", label: "Institution", kind: "text", required: true },
      { key: "degree", label: "Degree", kind: "text" },
      { key: "fieldOfStudy", label: "Field of study", kind: "text" },
      { key: "campus", label: "Campus", kind: "text" },
      { key: "startDate", label: "Start date", kind: "date" },
      { key: "graduationDate", label: "Graduation date", kind: "date" },
      { key: "countryId", label: "Country", kind: "country" },
    ],
  },
  {
    name: "certifications",
    title: "Certifications",
    noun: "certification",
    headline: "name",
    fields: [
      { key: "name", label: "Name", kind: "text", required: true },
      { key: "issuer", label: "Issuer", kind: "text" },
      { key: "issueDate", label: "Issue date", kind: "date" },
      { key: "credentialUrl", label: "Credential URL", kind: "url" },
    ],
  },
  {
    name: "skills",
    title: "Skills",
    noun: "skill",
    headline: "name",
    fields: [
      { key: "name", label: "Skill", kind: "text", required: true },
      { key: "level", label: "Level (1–5)", kind: "level" },
    ],
  },
  {
    name: "languages",
    title: "Languages",
    noun: "language",
    headline: "name",
    fields: [
      { key: "name", label: "Language", kind: "text", required: true },
      { key: "proficiency", label: "Proficiency", kind: "proficiency", required: true },
    ],
  },
  {
    name: "projects",
    title: "Projects",
    noun: "project",
    headline: "name",
    fields: [
      { key: "name", label: "Name", kind: "text", required: true },
      { key: "description", label: "Description", kind: "textarea" },
      { key: "url", label: "URL", kind: "url" },
      { key: "startDate", label: "Start date", kind: "date" },
      { key: "endDate", label: "End date", kind: "date" },
    ],
  },
];

const proficiencies = ["basic", "intermediate", "advanced", "native"];

function CountrySelect({ id, value, onChange }: { id: string; value: number; onChange: (v: number) => void }) {
  return (
    <select id={id} value={String(value || 0)} onChange={(e) => onChange(Number((e.currentTarget as HTMLSelectElement).value))}>
      <option value="0">—</option>
      {countries.map(([cid, name]) => (
        <option key={cid} value={String(cid)}>
          {name}
        </option>
      ))}
    </select>
  );
}

/** The form's copy of the profile. */
interface Draft {
  firstName: string;
  lastName: string;
  phone: string;
  picture: string;
  summary: string;
  countryId: number;
  curriculum: Record<SectionName, Item[]>;
}

function toDraft(p: ProfileData): Draft {
  const cv = {} as Record<SectionName, Item[]>;
  for (const s of sections) cv[s.name] = ((p.curriculum?.[s.name] ?? []) as unknown as Item[]).map((i) => ({ ...i }));
  return {
    firstName: p.firstName,
    lastName: p.lastName,
    phone: p.phone,
    picture: p.picture,
    summary: p.summary,
    countryId: p.countryId,
    curriculum: cv,
  };
}

/** The update that sets the whole profile to the draft (each section replaced whole). */
export function draftToUpdate(d: Draft): ProfileUpdate {
  const curriculum: Record<string, Item[]> = {};
  for (const s of sections) {
    curriculum[s.name] = d.curriculum[s.name].map((item) => {
      const out: Item = {};
      if (item.id) out.id = item.id;
      for (const f of s.fields) {
        const v = item[f.key];
        if (f.kind === "country" || f.kind === "level") {
          if (typeof v === "number" && v > 0) out[f.key] = v;
        } else {
          out[f.key] = typeof v === "string" ? v.trim() : "";
        }
      }
      return out;
    });
  }
  return {
    firstName: d.firstName.trim(),
    lastName: d.lastName.trim(),
    phone: d.phone.trim(),
    picture: d.picture.trim(),
    summary: d.summary.trim(),
    countryId: d.countryId,
    curriculum: curriculum as unknown as ProfileUpdate["curriculum"],
  };
}

function Field({ id, def, value, onChange }: { id: string; def: FieldDef; value: unknown; onChange: (v: string | number) => void }) {
  const str = value === undefined || value === null ? "" : String(value);
  const onText = (e: Event) => onChange((e.currentTarget as HTMLInputElement).value);
  let control;
  switch (def.kind) {
    case "textarea":
      control = <textarea id={id} rows={3} value={str} onInput={onText} />;
      break;
    case "country":
      control = <CountrySelect id={id} value={Number(value) || 0} onChange={onChange} />;
      break;
    case "level":
      control = (
        <select id={id} value={str || "0"} onChange={(e) => onChange(Number((e.currentTarget as HTMLSelectElement).value))}>
          <option value="0">—</option>
          {[1, 2, 3, 4, 5].map((n) => (
            <option key={n} value={String(n)}>
              {n}
            </option>
          ))}
        </select>
      );
      break;
    case "proficiency":
      control = (
        <select id={id} value={str} required={def.required} onChange={(e) => onChange((e.currentTarget as HTMLSelectElement).value)}>
          <option value="" disabled>
            Choose…
          </option>
          {proficiencies.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      );
      break;
    default:
      control = <input id={id} type={def.kind} value={str} required={def.required} onInput={onText} />;
  }
  return (
    <div class="field">
      <label for={id}>
        {def.label}
        {def.required ? <span aria-hidden="true"> *</span> : null}
      </label>
      {control}
    </div>
  );
}

/** One's own profile, editable: basics, country and the six curriculum sections. */
export function MyProfile({ store, state }: { store: Store; state: State }) {
  const me = state.me;
  const [draft, setDraft] = useState<Draft | undefined>(me ? toDraft(me) : undefined);
  const [status, setStatus] = useState<{ kind: "ok" | "error" | "busy"; text: string } | undefined>(undefined);

  useEffect(() => {
    if (me && !draft) setDraft(toDraft(me));
  }, [me, draft]);

  if (!me || !draft) return <p class="muted pad">Loading profile…</p>;

  const set = (patch: Partial<Draft>) => {
    setDraft({ ...draft, ...patch });
    setStatus(undefined);
  };
  const setItems = (name: SectionName, items: Item[]) => set({ curriculum: { ...draft.curriculum, [name]: items } });

  const save = async (e: Event) => {
    e.preventDefault();
    setStatus({ kind: "busy", text: "Saving…" });
    try {
      await store.saveProfile(draftToUpdate(draft));
      const saved = store.get().me;
      if (saved) setDraft(toDraft(saved));
      setStatus({ kind: "ok", text: "Profile saved." });
    } catch (err) {
      setStatus({ kind: "error", text: `Not saved: ${err instanceof CharlaError ? err.message : String(err)}` });
    }
  };

  return (
    <section class="profile" aria-labelledby="profile-title">
      <h2 id="profile-title">Your profile</h2>
      <p class="muted small">
        @{me.userName} · {me.email}
      </p>
      <form onSubmit={save} class="profile-form">
        <fieldset>
          <legend>About you</legend>
          <div class="grid">
            <Field id="p-first" def={{ key: "firstName", label: "First name", kind: "text", required: true }} value={draft.firstName} onChange={(v) => set({ firstName: String(v) })} />
            <Field id="p-last" def={{ key: "lastName", label: "Last name", kind: "text", required: true }} value={draft.lastName} onChange={(v) => set({ lastName: String(v) })} />
            <Field id="p-phone" def={{ key: "phone", label: "Phone", kind: "text" }} value={draft.phone} onChange={(v) => set({ phone: String(v) })} />
            <Field id="p-picture" def={{ key: "picture", label: "Picture URL", kind: "url" }} value={draft.picture} onChange={(v) => set({ picture: String(v) })} />
            <div class="field">
              <label for="p-country">Country</label>
              <CountrySelect id="p-country" value={draft.countryId} onChange={(v) => set({ countryId: v })} />
            </div>
          </div>
          <Field id="p-summary" def={{ key: "summary", label: "Summary", kind: "textarea" }} value={draft.summary} onChange={(v) => set({ summary: String(v) })} />
        </fieldset>
        {sections.map((s) => (
          <fieldset key={s.name} class="cv-section">
            <legend>{s.title}</legend>
            {draft.curriculum[s.name].length === 0 ? <p class="muted small">None.</p> : null}
            {draft.curriculum[s.name].map((item, i) => {
              const title = String(item[s.headline] || `New ${s.noun}`);
              return (
                <div class="cv-item" key={String(item.id ?? `new-${i}`)} role="group" aria-label={`${s.title} ${i + 1}: ${title}`}>
                  <div class="grid">
                    {s.fields.map((f) => (
                      <Field
                        key={f.key}
                        id={`cv-${s.name}-${i}-${f.key}`}
                        def={f}
                        value={item[f.key]}
                        onChange={(v) => setItems(s.name, draft.curriculum[s.name].map((x, j) => (j === i ? { ...x, [f.key]: v } : x)))}
                      />
                    ))}
                  </div>
                  <button
                    type="button"
                    class="link danger"
                    onClick={() => setItems(s.name, draft.curriculum[s.name].filter((_, j) => j !== i))}
                    aria-label={`Remove ${s.noun} ${title}`}
                  >
                    Remove
                  </button>
                </div>
              );
            })}
            <button type="button" class="secondary" onClick={() => setItems(s.name, [...draft.curriculum[s.name], {}])}>
              Add {s.noun}
            </button>
          </fieldset>
        ))}
        <div class="form-actions">
          <button type="submit" disabled={status?.kind === "busy"}>
            Save profile
          </button>
          <button type="button" class="secondary" onClick={() => { setDraft(toDraft(me)); setStatus(undefined); }}>
            Discard changes
          </button>
          <p role="status" class={status?.kind === "error" ? "error" : "muted"}>
            {status?.text ?? ""}
          </p>
        </div>
      </form>
    </section>
  );
}

function CurriculumView({ cv }: { cv: Curriculum }) {
  return (
    <>
      {sections.map((s) => {
        const items = (cv?.[s.name] ?? []) as unknown as Item[];
        if (items.length === 0) return null;
        return (
          <section key={s.name} class="cv-view" aria-labelledby={`cv-${s.name}`}>
            <h3 id={`cv-${s.name}`}>{s.title}</h3>
            <ul>
              {items.map((item) => (
                <li key={String(item.id)}>
                  <strong>{String(item[s.headline] ?? "")}</strong>
                  {s.fields
                    .filter((f) => f.key !== s.headline && item[f.key] !== undefined && item[f.key] !== "" && item[f.key] !== 0)
                    .map((f) => (
                      <span key={f.key} class="cv-detail">
                        {" · "}
                        {f.kind === "country" ? String(item.countryName || item[f.key]) : f.kind === "level" ? `level ${String(item[f.key])}` : String(item[f.key])}
                      </span>
                    ))}
                </li>
              ))}
            </ul>
          </section>
        );
      })}
    </>
  );
}

/** Another user's profile, read-only (contacts see presence, email and phone). */
export function UserProfile({ store, state, userId }: { store: Store; state: State; userId: number }) {
  useEffect(() => {
    if (state.conn === "open") void store.loadProfile(userId);
  }, [store, userId, state.conn]);
  const p = state.profiles[userId];
  if (!p) return <p class="muted pad">Loading profile…</p>;
  const chat = state.chats.find((c) => c.otherUserId === userId);
  const name = fullName(p.firstName, p.lastName, p.userName);
  return (
    <section class="profile" aria-labelledby="user-title">
      <header class="section-head">
        <div>
          <h2 id="user-title">{name}</h2>
          <p class="muted small">
            @{p.userName}
            {chat ? <> · <span data-testid="user-presence">{lastSeenText(p.isOnline, p.lastSeen)}</span></> : null}
          </p>
        </div>
        {chat ? <a class="button" href={`#/chat/${chat.chatId}`}>Message</a> : null}
      </header>
      <dl class="facts">
        {p.countryName ? (<><dt>Country</dt><dd>{p.countryName}</dd></>) : null}
        {p.email ? (<><dt>Email</dt><dd>{p.email}</dd></>) : null}
        {p.phone ? (<><dt>Phone</dt><dd>{p.phone}</dd></>) : null}
      </dl>
      {p.summary ? <p class="summary">{p.summary}</p> : null}
      <CurriculumView cv={p.curriculum} />
    </section>
  );
}
