-- Deck art (issue 14): each card of a deck may carry an uploaded image (its face, or the back),
-- replaced for the whole deck at once by an admin's bulk upload; and the flag that switches that
-- upload (seeds 002 uploads.deckBulk, removed by 002 while nothing used it). Rules: in
-- schema/07_orders.sql (app.replace_deck_art).

alter table public.deck_cards add column art_media_id bigint references public.media_assets (id);

insert into public.feature_flags (key, description, enabled) values
  ('uploads.deckBulk', 'bulk upload of a deck''s card art (78 faces and the back, all or nothing)', true)
on conflict (key) do nothing;

-- migrate:down
delete from public.feature_flags where key = 'uploads.deckBulk';
alter table public.deck_cards drop column art_media_id;
