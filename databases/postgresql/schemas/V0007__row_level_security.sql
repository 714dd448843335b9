-- Row-level security: which rows each role value the application claims may see and change.
-- The contract (app.user_id, app.user_role) and the full matrix are in ../README.md.
--
-- Shape of every policy:
--   * Policies for the platform are written TO allixios_app; allixios_owner and
--     allixios_readonly have their own; any other role matches no policy and sees nothing.
--   * CASE (SELECT app_current_role()) ... : the role is read once per statement (an initPlan,
--     not a call per row), and every row the policy looks at goes through the CASE, so an
--     unknown role value raises (app_current_role) instead of falling into some branch.
--   * FORCE ROW LEVEL SECURITY: the owner is subject to the policies too, so what the owner may
--     do is written down here (everything) rather than implied by ownership.
--   * Subqueries on articles inside policies are themselves filtered by the articles policies
--     of the same user: a comment or a tag link is never visible when its article is not.

------------------------------------------------------------------------------------------------
-- articles
------------------------------------------------------------------------------------------------
ALTER TABLE articles ENABLE ROW LEVEL SECURITY;
ALTER TABLE articles FORCE ROW LEVEL SECURITY;

-- Everyone sees published articles; authors also their own in any status; staff everything.
CREATE POLICY articles_app_select ON articles FOR SELECT TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN status = 'published' OR author_id = (SELECT app_current_user_id())
    ELSE status = 'published'
  END
);

-- Authors write under their own name; staff for anyone. Publishing itself is guarded by the
-- trigger in functions/R__article_publishing.sql (a policy cannot compare old and new rows).
CREATE POLICY articles_app_insert ON articles FOR INSERT TO allixios_app
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = (SELECT app_current_user_id())
    ELSE false
  END
);

-- Authors change their own articles in any status and cannot hand them to someone else.
CREATE POLICY articles_app_update ON articles FOR UPDATE TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = (SELECT app_current_user_id())
    ELSE false
  END
)
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = (SELECT app_current_user_id())
    ELSE false
  END
);

-- Authors delete only what never went out (draft, review); removing something readers have
-- seen is an editorial decision.
CREATE POLICY articles_app_delete ON articles FOR DELETE TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = (SELECT app_current_user_id()) AND status IN ('draft', 'review')
    ELSE false
  END
);

------------------------------------------------------------------------------------------------
-- article_revisions (append-only: no UPDATE or DELETE grant, so no policy for them)
------------------------------------------------------------------------------------------------
ALTER TABLE article_revisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE article_revisions FORCE ROW LEVEL SECURITY;

-- The article's author and the staff see its history; readers never see unpublished text.
CREATE POLICY article_revisions_app_select ON article_revisions FOR SELECT TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN EXISTS (
      SELECT 1 FROM articles a
       WHERE a.id = article_revisions.article_id AND a.author_id = (SELECT app_current_user_id()))
    ELSE false
  END
);

-- The revision trigger runs as the editing user: it may record the history of an article that
-- user may edit, under that user's name.
CREATE POLICY article_revisions_app_insert ON article_revisions FOR INSERT TO allixios_app
WITH CHECK (
  edited_by = (SELECT app_current_user_id())
  AND CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN EXISTS (
      SELECT 1 FROM articles a
       WHERE a.id = article_revisions.article_id AND a.author_id = (SELECT app_current_user_id()))
    ELSE false
  END
);

------------------------------------------------------------------------------------------------
-- article_tags (links follow their article)
------------------------------------------------------------------------------------------------
ALTER TABLE article_tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE article_tags FORCE ROW LEVEL SECURITY;

CREATE POLICY article_tags_app_select ON article_tags FOR SELECT TO allixios_app
USING (EXISTS (SELECT 1 FROM articles a WHERE a.id = article_tags.article_id));

CREATE POLICY article_tags_app_insert ON article_tags FOR INSERT TO allixios_app
WITH CHECK (
  EXISTS (
    SELECT 1 FROM articles a
     WHERE a.id = article_tags.article_id
       AND CASE (SELECT app_current_role())
             WHEN 'editor' THEN true
             WHEN 'admin' THEN true
             WHEN 'author' THEN a.author_id = (SELECT app_current_user_id())
             ELSE false
           END)
);

CREATE POLICY article_tags_app_delete ON article_tags FOR DELETE TO allixios_app
USING (
  EXISTS (
    SELECT 1 FROM articles a
     WHERE a.id = article_tags.article_id
       AND CASE (SELECT app_current_role())
             WHEN 'editor' THEN true
             WHEN 'admin' THEN true
             WHEN 'author' THEN a.author_id = (SELECT app_current_user_id())
             ELSE false
           END)
);

------------------------------------------------------------------------------------------------
-- comments
------------------------------------------------------------------------------------------------
ALTER TABLE comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE comments FORCE ROW LEVEL SECURITY;

-- Visible comments on published articles for everyone; one's own in any status (a hidden
-- comment does not silently vanish for its author); the staff see all to moderate.
CREATE POLICY comments_app_select ON comments FOR SELECT TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN
      status = 'visible'
      AND EXISTS (SELECT 1 FROM articles a WHERE a.id = comments.article_id AND a.status = 'published')
    ELSE
      (status = 'visible'
       AND EXISTS (SELECT 1 FROM articles a WHERE a.id = comments.article_id AND a.status = 'published'))
      OR author_id = (SELECT app_current_user_id())
  END
);

-- Signed-in users comment as themselves, visibly, on published articles.
CREATE POLICY comments_app_insert ON comments FOR INSERT TO allixios_app
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'anonymous' THEN false
    ELSE
      author_id = (SELECT app_current_user_id())
      AND status = 'visible'
      AND EXISTS (SELECT 1 FROM articles a WHERE a.id = comments.article_id AND a.status = 'published')
  END
);

-- Own comments, and the staff moderate any. Which status changes a non-moderator may make is
-- the trigger's business (functions/R__comment_moderation.sql).
CREATE POLICY comments_app_update ON comments FOR UPDATE TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE author_id = (SELECT app_current_user_id())
  END
)
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE author_id = (SELECT app_current_user_id())
  END
);

CREATE POLICY comments_app_delete ON comments FOR DELETE TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE author_id = (SELECT app_current_user_id())
  END
);

------------------------------------------------------------------------------------------------
-- users (e-mail addresses: private)
------------------------------------------------------------------------------------------------
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;

-- One's own account; the staff see all accounts (editors need to find authors).
CREATE POLICY users_app_select ON users FOR SELECT TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE id = (SELECT app_current_user_id())
  END
);

-- Self-signup: the application claims the new account's id with role reader and inserts that
-- very row, as an active reader. Admins create accounts of any role.
CREATE POLICY users_app_insert ON users FOR INSERT TO allixios_app
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE id = (SELECT app_current_user_id()) AND users.role = 'reader' AND users.status = 'active'
  END
);

-- One's own account (name, e-mail); admins any. Role and status changes are admin-only
-- (functions/R__user_guard.sql): a policy cannot tell which columns changed.
CREATE POLICY users_app_update ON users FOR UPDATE TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE id = (SELECT app_current_user_id())
  END
)
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE id = (SELECT app_current_user_id())
  END
);

CREATE POLICY users_app_delete ON users FOR DELETE TO allixios_app
USING ((SELECT app_current_role()) = 'admin');

------------------------------------------------------------------------------------------------
-- author_profiles (public bylines; only their user and the staff write them)
------------------------------------------------------------------------------------------------
ALTER TABLE author_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE author_profiles FORCE ROW LEVEL SECURITY;

-- Shown next to every article, to everyone. The role is still read, so that a transaction with
-- a broken claim fails here as on every other protected table.
CREATE POLICY author_profiles_app_select ON author_profiles FOR SELECT TO allixios_app
USING ((SELECT app_current_role()) IS NOT NULL);

CREATE POLICY author_profiles_app_insert ON author_profiles FOR INSERT TO allixios_app
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE user_id = (SELECT app_current_user_id())
  END
);

CREATE POLICY author_profiles_app_update ON author_profiles FOR UPDATE TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE user_id = (SELECT app_current_user_id())
  END
)
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE user_id = (SELECT app_current_user_id())
  END
);

CREATE POLICY author_profiles_app_delete ON author_profiles FOR DELETE TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE user_id = (SELECT app_current_user_id())
  END
);

------------------------------------------------------------------------------------------------
-- The migrator and reporting, on every table with row-level security
------------------------------------------------------------------------------------------------
-- allixios_owner: data migrations and SECURITY DEFINER helpers (article_slug_available) must
-- reach every row. FORCE makes the owner subject to RLS, so this is stated, not implied.
CREATE POLICY articles_owner_all ON articles FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY article_revisions_owner_all ON article_revisions FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY article_tags_owner_all ON article_tags FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY comments_owner_all ON comments FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY users_owner_all ON users FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY author_profiles_owner_all ON author_profiles FOR ALL TO allixios_owner USING (true) WITH CHECK (true);

-- allixios_readonly: reports count and compare every article, draft or not (editorial
-- pipeline, moderation volume), and are not served to end users. It can only read: SELECT is
-- its only grant, its transactions are read-only by default, and e-mail addresses are outside
-- its column grant (V0006).
CREATE POLICY articles_readonly_select ON articles FOR SELECT TO allixios_readonly USING (true);
CREATE POLICY article_revisions_readonly_select ON article_revisions FOR SELECT TO allixios_readonly USING (true);
CREATE POLICY article_tags_readonly_select ON article_tags FOR SELECT TO allixios_readonly USING (true);
CREATE POLICY comments_readonly_select ON comments FOR SELECT TO allixios_readonly USING (true);
CREATE POLICY users_readonly_select ON users FOR SELECT TO allixios_readonly USING (true);
CREATE POLICY author_profiles_readonly_select ON author_profiles FOR SELECT TO allixios_readonly USING (true);
