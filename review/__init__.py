"""The reviewer web app: a JSON API over the review store and one static page that people review with."""
