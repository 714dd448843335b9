-- Every text a user writes has a bound. An article's body had none, and every edit copies the
-- replaced version into article_revisions: ten edits of a 1 MB body took 20 MB in one
-- transaction. 200,000 characters is about 35,000 words, far beyond any article the platform
-- publishes. (Titles, excerpts, comments, bios and names were bounded from the start; a file's
-- type and a profile's address are bounded here as well.)
ALTER TABLE articles ADD CONSTRAINT articles_body_length CHECK (char_length(body) <= 200000);
ALTER TABLE author_profiles ADD CONSTRAINT author_profiles_website_url_length CHECK (char_length(website_url) <= 2000);
ALTER TABLE media ADD CONSTRAINT media_mime_type_length CHECK (char_length(mime_type) <= 255);
ALTER TABLE categories ADD CONSTRAINT categories_description_length CHECK (char_length(description) <= 2000);
