"""The rounds loop and its phases; `amplify.loop.run` reads as the recipe."""
