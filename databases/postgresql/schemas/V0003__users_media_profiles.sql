-- People and the files they upload. Timestamps are timestamptz (the server runs in UTC); every
-- updated_at is maintained by functions/R__updated_at.sql.

CREATE TABLE users (
  id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  email        text        NOT NULL,
  display_name text        NOT NULL,
  -- The role the platform grants this person. The application reads it at sign-in and claims it
  -- per transaction in app.user_role; only admins change it (R__user_guard.sql).
  role         text        NOT NULL DEFAULT 'reader',
  status       text        NOT NULL DEFAULT 'active',
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  -- A plausibility check, not validation: the application confirms addresses by sending mail.
  CONSTRAINT users_email_format CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND char_length(email) <= 320),
  CONSTRAINT users_display_name_present CHECK (btrim(display_name) <> '' AND char_length(display_name) <= 100),
  CONSTRAINT users_role_check CHECK (role IN ('reader', 'author', 'editor', 'admin')),
  CONSTRAINT users_status_check CHECK (status IN ('active', 'suspended'))
);
-- One account per address whatever its case; sign-in looks users up by lower(email). An
-- expression index rather than citext: no extension, and the stored address keeps its spelling.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE media (
  id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Media outlive the account that uploaded them: articles still show their covers.
  uploaded_by uuid        REFERENCES users (id) ON DELETE SET NULL,
  -- Where the object store keeps the file; one row per stored object.
  storage_key text        NOT NULL,
  mime_type   text        NOT NULL,
  size_bytes  bigint      NOT NULL,
  width       integer,
  height      integer,
  alt_text    text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT media_storage_key_key UNIQUE (storage_key),
  CONSTRAINT media_storage_key_present CHECK (btrim(storage_key) <> ''),
  CONSTRAINT media_mime_type_format CHECK (mime_type ~ '^[a-z]+/[a-z0-9][a-z0-9.+-]*$'),
  CONSTRAINT media_size_positive CHECK (size_bytes > 0),
  -- Dimensions are known for images and videos and absent for the rest: both or neither.
  CONSTRAINT media_dimensions CHECK ((width IS NULL) = (height IS NULL) AND (width IS NULL OR (width > 0 AND height > 0))),
  CONSTRAINT media_alt_text_length CHECK (char_length(alt_text) <= 1000)
);

-- The public face of a user who writes or comments: byline name, bio, avatar. It holds nothing
-- private (every reader sees it next to an article), but only its user and the staff may change
-- it, so row-level security guards the writes (V0007).
CREATE TABLE author_profiles (
  -- One profile per user, and it goes with the user.
  user_id         uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  display_name    text        NOT NULL,
  bio             text,
  -- Deleting the image leaves the profile without an avatar rather than blocking the deletion.
  avatar_media_id uuid        REFERENCES media (id) ON DELETE SET NULL,
  website_url     text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT author_profiles_display_name_present CHECK (btrim(display_name) <> '' AND char_length(display_name) <= 100),
  CONSTRAINT author_profiles_bio_length CHECK (char_length(bio) <= 5000),
  CONSTRAINT author_profiles_website_url_format CHECK (website_url ~ '^https?://[^[:space:]]+$')
);
